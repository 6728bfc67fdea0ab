// SPDX-License-Identifier: GPL-2.0

//! The stripe header: the self-description of one log-structured stripe.
//!
//! One 4 KiB block, written identically as the first block of every strip
//! of the stripe (see [`super::geometry`]). It orders the stripe in the log
//! (sequence number, timestamp, previous stripe, and how much of the log
//! was known flushed when it was built), says how the stripe is protected
//! (RAID type, width, strip size, parity positions), where each strip lies
//! and what host data each holds, and carries a CRC32C of itself and of
//! every strip's data so that a torn or stale stripe is recognised.
//! The byte layout is in Documentation/stria-format.rst; the offsets below
//! are the source of truth for it.

use super::crc;
use super::error::FormatError;
use super::error::Result;
use super::geometry;
use super::geometry::RaidType;
use super::geometry::StripRole;
use super::geometry::MAX_STRIPS;
use super::geometry::MAX_STRIP_BLOCKS;
use super::le;
use super::uuid::Uuid;

/// Magic at offset 0 of every header block.
pub const HDR_MAGIC: [u8; 8] = *b"STRIAHDR";

/// Header layout version written by this code.
pub const HDR_VERSION: u16 = 1;

/// Size of a header on disk: exactly one block.
pub const HEADER_BYTES: usize = geometry::BLOCK_SIZE;

/// Host pieces one header can describe.
pub const MAX_PIECES: usize = 160;

/// Most stripe groups an array has (the header records which one a stripe
/// was allocated from).
pub const MAX_GROUPS: usize = 8;

/// Volumes besides its own that one piece can stand for.
///
/// Blocks that free-space collection moves may be shared by several
/// instant copies; one piece names them all rather than storing the data
/// once per copy.
pub const MAX_ALSO: usize = 12;

/// Mask of the table bits of a piece's `also`.
const ALSO_MASK: u16 = (1 << MAX_ALSO) - 1;

/// A piece's whole `also` when it stands for exactly the volumes of the
/// piece before it in the header (whose `volume` it shares).
///
/// Collection moves runs of blocks that many volumes share; naming them
/// once and then pointing back keeps a piece split at a strip boundary
/// down to one entry, however many volumes it stands for.
pub const SAME_AS_PREVIOUS: u16 = 1 << 15;

/// Volume ids one list entry holds (see [`Piece::is_list`]).
pub const LIST_IDS: usize = 3;

/// Volumes one piece stands for at most: every volume the volume table
/// can hold.
pub const MAX_SHARERS: usize = super::superblock::MAX_VOLUMES;

/// On-disk value of an absent member or parity index.
pub const NONE_U8: u8 = 0xff;

/// Byte offsets of the header fields.
pub mod off {
    /// Magic, 8 bytes.
    pub const MAGIC: usize = 0;
    /// Layout version, u16.
    pub const VERSION: usize = 8;
    /// Flags, u16, zero in version 1.
    pub const FLAGS: usize = 10;
    /// CRC32C of the block with this field zero, u32.
    pub const CRC: usize = 12;
    /// Array UUID, 16 bytes.
    pub const ARRAY_UUID: usize = 16;
    /// Sequence number, u64.
    pub const SEQ: usize = 32;
    /// Timestamp in nanoseconds since the epoch, u64.
    pub const TIMESTAMP: usize = 40;
    /// Header LBA of the previous stripe on `PREV_MEMBER`, u64.
    pub const PREV_LBA: usize = 48;
    /// Member of the previous stripe's header, u8, 0xff for none.
    pub const PREV_MEMBER: usize = 56;
    /// RAID type code, u8.
    pub const RAID_TYPE: usize = 57;
    /// Number of strips, u8.
    pub const NR_STRIPS: usize = 58;
    /// Strip index of P, u8, 0xff for none.
    pub const PARITY_INDEX: usize = 59;
    /// Strip index of Q, u8, 0xff for none.
    pub const Q_INDEX: usize = 60;
    /// Stripe group the stripe was allocated from, u8.
    pub const GROUP: usize = 61;
    /// Number of host pieces, u16.
    pub const NR_PIECES: usize = 62;
    /// Data blocks per strip, u32.
    pub const STRIP_BLOCKS: usize = 64;
    /// Newest sequence number known durable when the stripe was built,
    /// u64, 0 for none.
    pub const DURABLE_SEQ: usize = 68;
    /// Volumes a piece may also stand for: [`super::MAX_ALSO`] u32 ids,
    /// unused ones 0.
    pub const ALSO: usize = 76;
    /// Reserved, zero, up to [`STRIPS`].
    pub const RESERVED: usize = ALSO + super::MAX_ALSO * 4;
    /// Bytes of the reserved area.
    pub const RESERVED_SIZE: usize = STRIPS - RESERVED;
    /// Strip table: [`super::MAX_STRIPS`] entries of `STRIP_SIZE` bytes.
    pub const STRIPS: usize = 128;
    /// Bytes per strip entry.
    pub const STRIP_SIZE: usize = 24;
    /// Strip entry: header LBA of the strip on its member, u64.
    pub const S_LBA: usize = 0;
    /// Strip entry: active (live) blocks at write time, u32.
    pub const S_ACTIVE: usize = 8;
    /// Strip entry: CRC32C of the strip's data blocks, u32.
    pub const S_DATA_CRC: usize = 12;
    /// Strip entry: number of host pieces in the strip, u16.
    pub const S_NR_PIECES: usize = 16;
    /// Strip entry: member index, u8.
    pub const S_MEMBER: usize = 18;
    /// Strip entry: flags, u8, zero.
    pub const S_FLAGS: usize = 19;
    /// Strip entry: reserved u32, zero.
    pub const S_RESERVED: usize = 20;
    /// Piece table: [`super::MAX_PIECES`] entries of `PIECE_SIZE` bytes.
    pub const PIECES: usize = STRIPS + super::MAX_STRIPS * STRIP_SIZE;
    /// Bytes per piece entry.
    pub const PIECE_SIZE: usize = 20;
    /// Piece entry: host LBA, u64.
    pub const P_HOST_LBA: usize = 0;
    /// Piece entry: volume id, u32.
    pub const P_VOLUME: usize = 8;
    /// Piece entry: host length in blocks, u16.
    pub const P_HOST_LEN: usize = 12;
    /// Piece entry: first block in the strip's data, u16.
    pub const P_START: usize = 14;
    /// Piece entry: blocks stored in the strip, u16 (0 for a trim).
    pub const P_LEN: usize = 16;
    /// Piece entry: bit `i` set when the piece also stands for volume
    /// `also[i]` of the header, u16; bits 12 to 14 zero; or exactly
    /// [`super::SAME_AS_PREVIOUS`].
    pub const P_ALSO: usize = 18;
    /// End of the piece table.
    pub const END: usize = PIECES + super::MAX_PIECES * PIECE_SIZE;
}

const _: () = assert!(off::END == HEADER_BYTES);
const _: () = assert!(off::DURABLE_SEQ + 8 == off::ALSO);
const _: () = assert!(off::RESERVED_SIZE == 4);

/// A place on a member: used for strips and the previous-stripe pointer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StripeLocation {
    /// Member index.
    pub member: u8,
    /// Block on the member.
    pub lba: u64,
}

/// A member's data area, in blocks from the start of the member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataArea {
    /// First block.
    pub start: u64,
    /// End, exclusive.
    pub end: u64,
}

/// One strip of a stripe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Strip {
    /// Member the strip lies on.
    pub member: u8,
    /// Block of the strip's header on that member; data follows it.
    pub lba: u64,
    /// Live data blocks in the strip when it was written.
    pub active_count: u32,
    /// Host pieces stored in this strip.
    pub nr_pieces: u16,
    /// CRC32C of the strip's `strip_blocks` data blocks.
    pub data_crc: u32,
}

impl Strip {
    /// An unused strip slot.
    pub const EMPTY: Strip = Strip {
        member: 0,
        lba: 0,
        active_count: 0,
        nr_pieces: 0,
        data_crc: 0,
    };
}

/// A run of host blocks stored in (or, for a trim, recorded by) a strip.
///
/// Within a stripe, a later piece in header order supersedes an earlier one
/// for the host blocks both cover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Piece {
    /// Volume id (never 0).
    pub volume: u32,
    /// First host block.
    pub host_lba: u64,
    /// Host blocks covered.
    pub host_len: u16,
    /// First block within the strip's data.
    pub start: u16,
    /// Blocks stored in the strip: equal to `host_len` for data, 0 for a
    /// trim record (the host range was discarded and reads as zeroes).
    pub len: u16,
    /// Bit `i` set: the piece stands for volume `also[i]` of the header
    /// too, at the same host blocks; or [`SAME_AS_PREVIOUS`].
    pub also: u16,
}

impl Piece {
    /// An unused piece slot.
    pub const EMPTY: Piece = Piece {
        volume: 0,
        host_lba: 0,
        host_len: 0,
        start: 0,
        len: 0,
        also: 0,
    };

    /// True for a trim record.
    pub fn is_trim(&self) -> bool {
        self.len == 0 && self.host_len != 0
    }

    /// True for a volume list entry: not a piece, but up to [`LIST_IDS`]
    /// more volumes that the piece before it stands for. On disk its ids
    /// take the bytes of `host_lba` (two, the low half first) and
    /// `volume`; `host_len` is 0, which no piece has.
    pub fn is_list(&self) -> bool {
        self.host_len == 0
    }

    /// A list entry naming `ids`, filled from the front (0 for none).
    pub fn list(ids: [u32; LIST_IDS]) -> Piece {
        let [a, b, c] = ids;
        Piece {
            host_lba: u64::from(a) | u64::from(b) << 32,
            volume: c,
            ..Piece::EMPTY
        }
    }

    /// The ids of a list entry, in order (0 for none).
    pub fn listed(&self) -> [u32; LIST_IDS] {
        [
            self.host_lba as u32,
            (self.host_lba >> 32) as u32,
            self.volume,
        ]
    }
}

/// Every volume the piece `entries[0]` stands for when it names them
/// itself: its own, those of its `also` bits in table order, then those
/// of the list entries right after it.
fn sharers<'a>(table: &'a [u32; MAX_ALSO], entries: &'a [Piece]) -> impl Iterator<Item = u32> + 'a {
    let (p, rest) = match entries.split_first() {
        Some((p, rest)) => (Some(p), rest),
        None => (None, &[][..]),
    };
    let bits = p.map_or(0, |p| p.also & ALSO_MASK);
    let also = table
        .iter()
        .enumerate()
        .filter(move |(i, id)| bits & (1 << i) != 0 && **id != 0)
        .map(|(_, id)| *id);
    let listed = rest
        .iter()
        .take_while(|e| e.is_list())
        .flat_map(|e| e.listed())
        .filter(|id| *id != 0);
    p.map(|p| p.volume).into_iter().chain(also).chain(listed)
}

/// A decoded stripe header.
///
/// Fixed-size and `Copy` (about 4.5 KiB), so that the kernel can keep it
/// in a preallocated buffer: use [`StripeHeader::decode_into`] to fill one
/// without building a temporary on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StripeHeader {
    /// Array the stripe belongs to.
    pub array_uuid: Uuid,
    /// Position in the log; higher is newer.
    pub seq: u64,
    /// Write time in nanoseconds since the epoch (informational).
    pub timestamp: u64,
    /// Header location of the previous stripe in the log, if any.
    pub prev: Option<StripeLocation>,
    /// Every stripe of the array with a sequence number at or below this
    /// was on stable storage (its members flushed) when this stripe was
    /// built; 0 if none. Always below `seq` unless 0.
    pub durable_seq: u64,
    /// Protection of this stripe.
    pub raid_type: RaidType,
    /// Stripe group the strips came from.
    pub group: u8,
    /// Strip index of P (RAID-5 and RAID-6).
    pub parity_index: Option<u8>,
    /// Strip index of Q (RAID-6).
    pub q_index: Option<u8>,
    /// Data blocks per strip (the header block excluded).
    pub strip_blocks: u32,
    /// Strips in use in `strips`.
    pub nr_strips: u8,
    /// The strips; entries from `nr_strips` on are [`Strip::EMPTY`].
    pub strips: [Strip; MAX_STRIPS],
    /// Volumes pieces also stand for (see [`Piece::also`]); unused
    /// entries 0.
    pub also: [u32; MAX_ALSO],
    /// Pieces in use in `pieces`.
    pub nr_pieces: u16,
    /// The pieces, grouped by strip in strip order: the first
    /// `strips[0].nr_pieces` belong to strip 0, and so on. Entries from
    /// `nr_pieces` on are [`Piece::EMPTY`].
    pub pieces: [Piece; MAX_PIECES],
}

impl StripeHeader {
    /// A header with nothing in it (not valid until filled in).
    pub const EMPTY: StripeHeader = StripeHeader {
        array_uuid: Uuid::NIL,
        seq: 0,
        timestamp: 0,
        prev: None,
        durable_seq: 0,
        raid_type: RaidType::Raid0,
        group: 0,
        parity_index: None,
        q_index: None,
        strip_blocks: 0,
        nr_strips: 0,
        strips: [Strip::EMPTY; MAX_STRIPS],
        also: [0; MAX_ALSO],
        nr_pieces: 0,
        pieces: [Piece::EMPTY; MAX_PIECES],
    };

    /// The strips in use.
    pub fn strips(&self) -> &[Strip] {
        self.strips
            .get(..usize::from(self.nr_strips))
            .unwrap_or(&[])
    }

    /// Every volume piece `p`, one of this header's (as [`Self::pieces`]
    /// and [`Self::pieces_with_strip`] hand them out), stands for: its
    /// own, those of its `also` bits in table order, then those of the
    /// list entries after it; for a [`SAME_AS_PREVIOUS`] piece those of
    /// the piece it refers back to. A piece from elsewhere gets its own
    /// and its `also` bits' only.
    pub fn volumes_of<'a>(&'a self, p: &'a Piece) -> impl Iterator<Item = u32> + 'a {
        let entries = self
            .index_of(p)
            .and_then(|i| {
                let base = self
                    .entries()
                    .get(..=i)?
                    .iter()
                    .rposition(|e| !e.is_list() && e.also != SAME_AS_PREVIOUS)?;
                self.entries().get(base..)
            })
            .unwrap_or(core::slice::from_ref(p));
        sharers(&self.also, entries)
    }

    /// Index in `pieces` of `p`, if it is one of them.
    fn index_of(&self, p: &Piece) -> Option<usize> {
        // Pieces are handed out as references into the table: where one
        // lies says which entries come after it.
        let at = (core::ptr::from_ref(p) as usize).checked_sub(self.pieces.as_ptr() as usize)?;
        let i = at / core::mem::size_of::<Piece>();
        self.pieces
            .get(i)
            .filter(|q| core::ptr::eq(*q, p))
            .map(|_| i)
    }

    /// The entries in use: the pieces and the list entries among them.
    pub fn entries(&self) -> &[Piece] {
        self.pieces
            .get(..usize::from(self.nr_pieces))
            .unwrap_or(&[])
    }

    /// The pieces in use, in header order, list entries left out.
    pub fn pieces(&self) -> impl Iterator<Item = &Piece> + '_ {
        self.entries().iter().filter(|e| !e.is_list())
    }

    /// The entries (pieces and list entries) of strip `i`.
    pub fn pieces_of(&self, i: usize) -> Result<&[Piece]> {
        let strips = self.strips();
        let before = strips.get(..i).ok_or(FormatError::OutOfRange)?;
        let first: usize = before.iter().map(|s| usize::from(s.nr_pieces)).sum();
        let n = strips.get(i).ok_or(FormatError::OutOfRange)?.nr_pieces;
        let end = first
            .checked_add(usize::from(n))
            .ok_or(FormatError::Overflow)?;
        self.entries()
            .get(first..end)
            .ok_or(FormatError::PieceCountMismatch)
    }

    /// Every piece with the index of the strip that holds it, in header
    /// order (which is also write order), list entries left out.
    pub fn pieces_with_strip(&self) -> PiecesWithStrip<'_> {
        PiecesWithStrip {
            lists: false,
            ..self.entries_with_strip()
        }
    }

    /// As [`Self::pieces_with_strip`], list entries included.
    fn entries_with_strip(&self) -> PiecesWithStrip<'_> {
        PiecesWithStrip {
            hdr: self,
            strip: 0,
            left_in_strip: self.strips().first().map_or(0, |s| s.nr_pieces),
            next: 0,
            lists: true,
        }
    }

    /// Index of the strip whose header lies at `lba` on `member`.
    pub fn strip_at(&self, member: u8, lba: u64) -> Option<usize> {
        self.strips()
            .iter()
            .position(|s| s.member == member && s.lba == lba)
    }

    /// Checks that this header, read from `lba` on `member`, describes a
    /// strip there. A header image found anywhere else (inside host data,
    /// say) is not a stripe of this array.
    pub fn check_location(&self, member: u8, lba: u64) -> Result<usize> {
        self.strip_at(member, lba).ok_or(FormatError::WrongLocation)
    }

    /// Checks that every strip, header block and data, lies inside the data
    /// area of a member the array has (`area(member)`, `None` for none), and
    /// that the
    /// previous-stripe pointer names a block of one. A header can pass
    /// every other check and still name places the array does not have; after
    /// this one, arithmetic on its strips' places cannot overflow.
    pub fn check_areas(&self, area: impl Fn(u8) -> Option<DataArea>) -> Result {
        let span = geometry::strip_span(self);
        for s in self.strips() {
            let a = area(s.member).ok_or(FormatError::BadStripMember)?;
            let end = s.lba.checked_add(span).ok_or(FormatError::OutOfRange)?;
            if s.lba < a.start || end > a.end {
                return Err(FormatError::OutOfRange);
            }
        }
        if let Some(p) = self.prev {
            let a = area(p.member).ok_or(FormatError::BadPrevious)?;
            if p.lba < a.start || p.lba >= a.end {
                return Err(FormatError::BadPrevious);
            }
        }
        Ok(())
    }

    /// Checks that the header belongs to array `uuid`.
    pub fn check_array(&self, uuid: &Uuid) -> Result {
        if self.array_uuid == *uuid {
            Ok(())
        } else {
            Err(FormatError::WrongArray)
        }
    }

    /// Checks strip `i`'s data against its recorded CRC32C. `data` is the
    /// strip's `strip_blocks` data blocks.
    pub fn verify_strip_data(&self, i: usize, data: &[u8]) -> Result {
        self.strips().get(i).ok_or(FormatError::OutOfRange)?;
        let want = geometry::blocks_to_bytes(u64::from(self.strip_blocks))?;
        if data.len() != want {
            return Err(FormatError::LengthMismatch);
        }
        self.verify_strip_crc(i, crc::crc32c(data))
    }

    /// Checks strip `i`'s data against its recorded CRC32C, given `crc`,
    /// the CRC32C of its `strip_blocks` data blocks computed by the caller
    /// (with [`crc::update`], a window at a time, for strips too large to
    /// read at once).
    pub fn verify_strip_crc(&self, i: usize, crc: u32) -> Result {
        let s = self.strips().get(i).ok_or(FormatError::OutOfRange)?;
        if crc == s.data_crc {
            Ok(())
        } else {
            Err(FormatError::BadChecksum)
        }
    }

    /// Location of strip `i`'s header, as the next stripe's `prev` records.
    pub fn location(&self, i: usize) -> Result<StripeLocation> {
        let s = self.strips().get(i).ok_or(FormatError::OutOfRange)?;
        Ok(StripeLocation {
            member: s.member,
            lba: s.lba,
        })
    }

    /// Checks every rule a header must obey. [`Self::encode`] and
    /// [`Self::decode`] both apply it, so no invalid header is ever written
    /// or accepted.
    pub fn validate(&self) -> Result {
        if self.array_uuid.is_nil() {
            return Err(FormatError::WrongArray);
        }
        let n = usize::from(self.nr_strips);
        geometry::check_layout(self.raid_type, n, self.parity_index, self.q_index)?;
        if self.strip_blocks == 0 || self.strip_blocks > MAX_STRIP_BLOCKS {
            return Err(FormatError::BadStripSize);
        }
        if usize::from(self.group) >= MAX_GROUPS {
            return Err(FormatError::BadGroup);
        }
        if let Some(p) = self.prev {
            if usize::from(p.member) >= geometry::MAX_MEMBERS {
                return Err(FormatError::BadPrevious);
            }
        }
        // A stripe cannot vouch for itself or a later stripe; 0 claims
        // nothing and is always allowed.
        if self.durable_seq != 0 && self.durable_seq >= self.seq {
            return Err(FormatError::BadDurableSeq);
        }
        let span = geometry::strip_span(self);
        let mut seen: u32 = 0;
        for s in self.strips() {
            if usize::from(s.member) >= geometry::MAX_MEMBERS {
                return Err(FormatError::BadStripMember);
            }
            let bit = 1u32 << s.member;
            if seen & bit != 0 {
                return Err(FormatError::DuplicateMember);
            }
            seen |= bit;
            s.lba.checked_add(span).ok_or(FormatError::Overflow)?;
        }
        if self.strips.iter().skip(n).any(|s| *s != Strip::EMPTY) {
            return Err(FormatError::ReservedBits);
        }
        // The table is filled from the front, without repeats.
        for (i, id) in self.also.iter().enumerate() {
            let later = self.also.get(i + 1..).unwrap_or(&[]);
            let bad = if *id == 0 {
                later.iter().any(|l| *l != 0)
            } else {
                later.contains(id)
            };
            if bad {
                return Err(FormatError::BadVolumeId);
            }
        }
        let in_table = self.also.iter().take_while(|id| **id != 0).count();
        let np = usize::from(self.nr_pieces);
        if np > MAX_PIECES {
            return Err(FormatError::TooManyPieces);
        }
        if self.pieces.iter().skip(np).any(|p| *p != Piece::EMPTY) {
            return Err(FormatError::ReservedBits);
        }
        let mut next = 0usize;
        for (i, s) in self.strips().iter().enumerate() {
            let end = next
                .checked_add(usize::from(s.nr_pieces))
                .ok_or(FormatError::Overflow)?;
            let pieces = self
                .entries()
                .get(next..end)
                .ok_or(FormatError::PieceCountMismatch)?;
            next = end;
            if !matches!(geometry::strip_role(self, i)?, StripRole::Data(_)) {
                if s.nr_pieces != 0 {
                    return Err(FormatError::PieceCountMismatch);
                }
                if s.active_count != 0 {
                    return Err(FormatError::BadActiveCount);
                }
                continue;
            }
            let used = self.check_strip_pieces(pieces)?;
            if s.active_count > used {
                return Err(FormatError::BadActiveCount);
            }
        }
        if next != np {
            return Err(FormatError::PieceCountMismatch);
        }
        self.check_sharers(in_table)
    }

    /// Checks whom each piece stands for: list entries only right after a
    /// piece of their strip (or a full list entry), their ids filled from
    /// the front; a [`SAME_AS_PREVIOUS`] piece only after a piece of the
    /// same volume, with no list entries; no volume twice for one piece,
    /// and at most [`MAX_SHARERS`].
    fn check_sharers(&self, in_table: usize) -> Result {
        let mut prev: Option<&Piece> = None;
        let mut strip = 0usize;
        let mut list_may_follow = false;
        for (k, (s, e)) in self.entries_with_strip().enumerate() {
            if e.is_list() {
                if !list_may_follow || s != strip {
                    return Err(FormatError::BadVolumeId);
                }
                if e.start != 0 || e.len != 0 || e.also != 0 {
                    return Err(FormatError::ReservedBits);
                }
                let ids = e.listed();
                let n = ids.iter().take_while(|id| **id != 0).count();
                if n == 0 || ids.iter().skip(n).any(|id| *id != 0) {
                    return Err(FormatError::BadVolumeId);
                }
                list_may_follow = n == LIST_IDS;
                continue;
            }
            strip = s;
            if e.volume == 0 {
                return Err(FormatError::BadVolumeId);
            }
            if e.also == SAME_AS_PREVIOUS {
                if !matches!(prev, Some(p) if p.volume == e.volume) {
                    return Err(FormatError::BadVolumeId);
                }
                list_may_follow = false;
            } else {
                if e.also & !ALSO_MASK != 0 || u32::from(e.also) >> in_table != 0 {
                    return Err(FormatError::BadVolumeId);
                }
                let entries = self.entries().get(k..).unwrap_or(&[]);
                let mut n = 0usize;
                for (j, v) in sharers(&self.also, entries).enumerate() {
                    n += 1;
                    if n > MAX_SHARERS || sharers(&self.also, entries).skip(j + 1).any(|w| w == v) {
                        return Err(FormatError::BadVolumeId);
                    }
                }
                list_may_follow = true;
            }
            prev = Some(e);
        }
        Ok(())
    }

    /// Checks the pieces of one data strip, returning the blocks they store.
    fn check_strip_pieces(&self, pieces: &[Piece]) -> Result<u32> {
        let mut fill = 0u32;
        let mut used = 0u32;
        for p in pieces.iter().filter(|p| !p.is_list()) {
            p.host_lba
                .checked_add(u64::from(p.host_len))
                .ok_or(FormatError::Overflow)?;
            if p.is_trim() {
                if p.start != 0 {
                    return Err(FormatError::BadPieceLength);
                }
                continue;
            }
            if p.host_len != p.len {
                return Err(FormatError::BadPieceLength);
            }
            let start = u32::from(p.start);
            let end = start + u32::from(p.len);
            if end > self.strip_blocks {
                return Err(FormatError::PieceOutOfStrip);
            }
            // Data pieces are laid down in ascending order as the writer
            // fills the strip, so one comparison catches any overlap.
            if start < fill {
                return Err(FormatError::PieceOverlap);
            }
            fill = end;
            used += u32::from(p.len);
        }
        Ok(used)
    }

    /// Encodes into the first [`HEADER_BYTES`] of `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result {
        self.validate()?;
        let b = le::slice_mut(buf, 0, HEADER_BYTES)?;
        b.fill(0);
        le::put_bytes(b, off::MAGIC, &HDR_MAGIC)?;
        le::put_u16(b, off::VERSION, HDR_VERSION)?;
        le::put_bytes(b, off::ARRAY_UUID, &self.array_uuid.0)?;
        le::put_u64(b, off::SEQ, self.seq)?;
        le::put_u64(b, off::TIMESTAMP, self.timestamp)?;
        let (pm, pl) = self.prev.map_or((NONE_U8, 0), |p| (p.member, p.lba));
        le::put_u64(b, off::PREV_LBA, pl)?;
        le::put_u8(b, off::PREV_MEMBER, pm)?;
        le::put_u64(b, off::DURABLE_SEQ, self.durable_seq)?;
        le::put_u8(b, off::RAID_TYPE, self.raid_type as u8)?;
        le::put_u8(b, off::NR_STRIPS, self.nr_strips)?;
        le::put_u8(b, off::PARITY_INDEX, self.parity_index.unwrap_or(NONE_U8))?;
        le::put_u8(b, off::Q_INDEX, self.q_index.unwrap_or(NONE_U8))?;
        le::put_u8(b, off::GROUP, self.group)?;
        le::put_u16(b, off::NR_PIECES, self.nr_pieces)?;
        le::put_u32(b, off::STRIP_BLOCKS, self.strip_blocks)?;
        for (i, id) in self.also.iter().enumerate() {
            le::put_u32(b, off::ALSO + 4 * i, *id)?;
        }
        for (i, s) in self.strips().iter().enumerate() {
            let e = off::STRIPS + i * off::STRIP_SIZE;
            le::put_u64(b, e + off::S_LBA, s.lba)?;
            le::put_u32(b, e + off::S_ACTIVE, s.active_count)?;
            le::put_u32(b, e + off::S_DATA_CRC, s.data_crc)?;
            le::put_u16(b, e + off::S_NR_PIECES, s.nr_pieces)?;
            le::put_u8(b, e + off::S_MEMBER, s.member)?;
        }
        for (i, p) in self.entries().iter().enumerate() {
            let e = off::PIECES + i * off::PIECE_SIZE;
            le::put_u64(b, e + off::P_HOST_LBA, p.host_lba)?;
            le::put_u32(b, e + off::P_VOLUME, p.volume)?;
            le::put_u16(b, e + off::P_HOST_LEN, p.host_len)?;
            le::put_u16(b, e + off::P_START, p.start)?;
            le::put_u16(b, e + off::P_LEN, p.len)?;
            le::put_u16(b, e + off::P_ALSO, p.also)?;
        }
        let sum = crc::crc32c_skip_field(b, off::CRC).ok_or(FormatError::BufferTooSmall)?;
        le::put_u32(b, off::CRC, sum)
    }

    /// Decodes and validates a header block.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut h = StripeHeader::EMPTY;
        h.decode_into(buf)?;
        Ok(h)
    }

    /// Decodes and validates a header block into `self`. On error the
    /// contents of `self` are unspecified.
    pub fn decode_into(&mut self, buf: &[u8]) -> Result {
        let b = le::slice(buf, 0, HEADER_BYTES)?;
        if le::array::<8>(b, off::MAGIC)? != HDR_MAGIC {
            return Err(FormatError::BadMagic);
        }
        if le::get_u16(b, off::VERSION)? != HDR_VERSION {
            return Err(FormatError::BadVersion);
        }
        let sum = crc::crc32c_skip_field(b, off::CRC).ok_or(FormatError::BufferTooSmall)?;
        if le::get_u32(b, off::CRC)? != sum {
            return Err(FormatError::BadChecksum);
        }
        if le::get_u16(b, off::FLAGS)? != 0
            || !le::all_zero(le::slice(b, off::RESERVED, off::RESERVED_SIZE)?)
        {
            return Err(FormatError::ReservedBits);
        }
        self.array_uuid = Uuid(le::array(b, off::ARRAY_UUID)?);
        self.seq = le::get_u64(b, off::SEQ)?;
        self.timestamp = le::get_u64(b, off::TIMESTAMP)?;
        let prev_lba = le::get_u64(b, off::PREV_LBA)?;
        self.prev = match le::get_u8(b, off::PREV_MEMBER)? {
            NONE_U8 if prev_lba == 0 => None,
            NONE_U8 => return Err(FormatError::BadPrevious),
            member => Some(StripeLocation {
                member,
                lba: prev_lba,
            }),
        };
        self.durable_seq = le::get_u64(b, off::DURABLE_SEQ)?;
        self.raid_type = RaidType::from_u8(le::get_u8(b, off::RAID_TYPE)?)?;
        self.nr_strips = le::get_u8(b, off::NR_STRIPS)?;
        let opt = |v: u8| (v != NONE_U8).then_some(v);
        self.parity_index = opt(le::get_u8(b, off::PARITY_INDEX)?);
        self.q_index = opt(le::get_u8(b, off::Q_INDEX)?);
        self.group = le::get_u8(b, off::GROUP)?;
        self.nr_pieces = le::get_u16(b, off::NR_PIECES)?;
        self.strip_blocks = le::get_u32(b, off::STRIP_BLOCKS)?;
        for (i, id) in self.also.iter_mut().enumerate() {
            *id = le::get_u32(b, off::ALSO + 4 * i)?;
        }
        // Counts first: the slot loops below rely on them to tell used
        // entries from padding.
        geometry::check_layout(
            self.raid_type,
            usize::from(self.nr_strips),
            self.parity_index,
            self.q_index,
        )?;
        if usize::from(self.nr_pieces) > MAX_PIECES {
            return Err(FormatError::TooManyPieces);
        }
        for (i, s) in self.strips.iter_mut().enumerate() {
            let e = off::STRIPS + i * off::STRIP_SIZE;
            let raw = le::slice(b, e, off::STRIP_SIZE)?;
            if le::get_u8(raw, off::S_FLAGS)? != 0 || le::get_u32(raw, off::S_RESERVED)? != 0 {
                return Err(FormatError::ReservedBits);
            }
            if i >= usize::from(self.nr_strips) {
                if !le::all_zero(raw) {
                    return Err(FormatError::ReservedBits);
                }
                *s = Strip::EMPTY;
                continue;
            }
            *s = Strip {
                member: le::get_u8(raw, off::S_MEMBER)?,
                lba: le::get_u64(raw, off::S_LBA)?,
                active_count: le::get_u32(raw, off::S_ACTIVE)?,
                nr_pieces: le::get_u16(raw, off::S_NR_PIECES)?,
                data_crc: le::get_u32(raw, off::S_DATA_CRC)?,
            };
        }
        for (i, p) in self.pieces.iter_mut().enumerate() {
            let e = off::PIECES + i * off::PIECE_SIZE;
            let raw = le::slice(b, e, off::PIECE_SIZE)?;
            if i >= usize::from(self.nr_pieces) {
                if !le::all_zero(raw) {
                    return Err(FormatError::ReservedBits);
                }
                *p = Piece::EMPTY;
                continue;
            }
            *p = Piece {
                volume: le::get_u32(raw, off::P_VOLUME)?,
                host_lba: le::get_u64(raw, off::P_HOST_LBA)?,
                host_len: le::get_u16(raw, off::P_HOST_LEN)?,
                start: le::get_u16(raw, off::P_START)?,
                len: le::get_u16(raw, off::P_LEN)?,
                also: le::get_u16(raw, off::P_ALSO)?,
            };
        }
        self.validate()
    }
}

/// True when `buf` starts with the header magic: a cheap filter for a
/// member scan before the full [`StripeHeader::decode`].
pub fn looks_like_header(buf: &[u8]) -> bool {
    buf.get(..HDR_MAGIC.len()) == Some(&HDR_MAGIC[..])
}

/// Iterator over `(strip index, piece)`; see
/// [`StripeHeader::pieces_with_strip`].
pub struct PiecesWithStrip<'a> {
    hdr: &'a StripeHeader,
    strip: usize,
    left_in_strip: u16,
    next: usize,
    /// List entries are handed out too.
    lists: bool,
}

impl<'a> Iterator for PiecesWithStrip<'a> {
    type Item = (usize, &'a Piece);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let p = self.hdr.entries().get(self.next)?;
            while self.left_in_strip == 0 {
                self.strip += 1;
                self.left_in_strip = self.hdr.strips().get(self.strip)?.nr_pieces;
            }
            self.left_in_strip -= 1;
            self.next += 1;
            if self.lists || !p.is_list() {
                return Some((self.strip, p));
            }
        }
    }
}

/// Everything about a new stripe except its pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StripeParams {
    /// Array the stripe belongs to.
    pub array_uuid: Uuid,
    /// Sequence number, above every earlier stripe's.
    pub seq: u64,
    /// Write time in nanoseconds since the epoch.
    pub timestamp: u64,
    /// Header location of the previous stripe.
    pub prev: Option<StripeLocation>,
    /// Every stripe with a sequence number at or below this was flushed to
    /// stable storage when this stripe was built; 0 if none. Below `seq`.
    pub durable_seq: u64,
    /// Protection.
    pub raid_type: RaidType,
    /// Stripe group the strips come from.
    pub group: u8,
    /// Data blocks per strip.
    pub strip_blocks: u32,
    /// P position (RAID-5/6); see [`geometry::default_parity`].
    pub parity_index: Option<u8>,
    /// Q position (RAID-6).
    pub q_index: Option<u8>,
}

/// Where [`HeaderBuilder::append`] put host blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// First block in the stripe's data space.
    pub data_offset: u64,
    /// Blocks placed (perhaps fewer than asked for).
    pub blocks: u64,
}

/// Fills a stripe header as host writes arrive.
///
/// The writer appends host ranges; the builder lays them into the data
/// space in order, splits them at strip boundaries, merges contiguous
/// ranges into one piece, and keeps the active counts. When the data space
/// or the piece table is full it places what fits and reports how much, or
/// [`FormatError::DoesNotFit`] when nothing fits: the writer then closes
/// this stripe and opens another rather than losing a piece.
#[derive(Clone, Copy, Debug)]
pub struct HeaderBuilder {
    hdr: StripeHeader,
    fill: u64,
    last_strip: usize,
    /// Entries no append may take (see [`Self::keep_free`]).
    keep: usize,
}

impl HeaderBuilder {
    /// A builder with no stripe; call [`Self::reset`] before use.
    pub const EMPTY: HeaderBuilder = HeaderBuilder {
        hdr: StripeHeader::EMPTY,
        fill: 0,
        last_strip: 0,
        keep: 0,
    };

    /// Starts a stripe whose strip `i` lies at `strips[i]`.
    pub fn new(params: &StripeParams, strips: &[StripeLocation]) -> Result<Self> {
        let mut b = HeaderBuilder::EMPTY;
        b.reset(params, strips)?;
        Ok(b)
    }

    /// Starts a new stripe in place, discarding the previous one.
    ///
    /// Works on `self` directly so that a kernel caller holding the builder
    /// in preallocated memory never copies a header through its stack. On
    /// error the builder is left empty.
    pub fn reset(&mut self, params: &StripeParams, strips: &[StripeLocation]) -> Result {
        self.fill = 0;
        self.last_strip = 0;
        self.keep = 0;
        self.hdr = StripeHeader::EMPTY;
        let nr_strips = match u8::try_from(strips.len()) {
            Ok(n) if strips.len() <= MAX_STRIPS => n,
            _ => return Err(FormatError::BadStripCount),
        };
        let h = &mut self.hdr;
        h.array_uuid = params.array_uuid;
        h.seq = params.seq;
        h.timestamp = params.timestamp;
        h.prev = params.prev;
        h.durable_seq = params.durable_seq;
        h.raid_type = params.raid_type;
        h.group = params.group;
        h.strip_blocks = params.strip_blocks;
        h.parity_index = params.parity_index;
        h.q_index = params.q_index;
        h.nr_strips = nr_strips;
        for (slot, loc) in h.strips.iter_mut().zip(strips) {
            slot.member = loc.member;
            slot.lba = loc.lba;
        }
        let r = h.validate();
        if r.is_err() {
            self.hdr = StripeHeader::EMPTY;
        }
        r
    }

    /// The header as built so far.
    pub fn header(&self) -> &StripeHeader {
        &self.hdr
    }

    /// Data-space blocks already used.
    pub fn used_blocks(&self) -> u64 {
        self.fill
    }

    /// Data-space blocks still free.
    pub fn free_blocks(&self) -> u64 {
        geometry::data_blocks(&self.hdr).saturating_sub(self.fill)
    }

    /// Piece slots still free.
    pub fn free_pieces(&self) -> usize {
        MAX_PIECES.saturating_sub(usize::from(self.hdr.nr_pieces))
    }

    /// Keeps `n` piece slots free from now on (until [`Self::reset`]):
    /// an append that would take them does not fit. Laying the pieces out
    /// again at other strip boundaries may split some, each split one
    /// slot more.
    pub fn keep_free(&mut self, n: usize) {
        self.keep = n;
    }

    /// True when no piece has been added.
    pub fn is_empty(&self) -> bool {
        self.hdr.nr_pieces == 0
    }

    /// Strip of the data-space block `pos`, clamped to the last data strip.
    fn strip_of(&self, pos: u64) -> Result<usize> {
        let sb = u64::from(self.hdr.strip_blocks);
        let last = geometry::data_strip_count(&self.hdr).saturating_sub(1);
        let k = pos.checked_div(sb).ok_or(FormatError::BadStripSize)?;
        let k = usize::try_from(k).map_err(|_| FormatError::Overflow)?;
        geometry::data_strip(&self.hdr, k.min(last))
    }

    /// The last piece, list entries left out.
    fn last_piece(&self) -> Option<&Piece> {
        self.hdr.entries().iter().rev().find(|e| !e.is_list())
    }

    /// True when the last piece stands for exactly `volume` and `also`.
    fn last_stands_for(&self, volume: u32, also: &[u32]) -> bool {
        let Some(last) = self.last_piece() else {
            return false;
        };
        // The ids are distinct (checked before), so equal counts and
        // every one found make the same set.
        last.volume == volume
            && self.hdr.volumes_of(last).count() == also.len() + 1
            && also
                .iter()
                .all(|id| self.hdr.volumes_of(last).any(|v| v == *id))
    }

    /// Extends the last piece by `run` blocks if `want` continues it (for
    /// `volume` and `also`).
    fn try_extend(&mut self, strip: usize, want: &Piece, run: u16, also: &[u32]) -> bool {
        if self.last_strip != strip || !self.last_stands_for(want.volume, also) {
            return false;
        }
        let Some(idx) = self.hdr.entries().iter().rposition(|e| !e.is_list()) else {
            return false;
        };
        let Some(last) = self.hdr.pieces.get_mut(idx) else {
            return false;
        };
        let continues = last.is_trim() == want.is_trim()
            && last.host_lba.checked_add(u64::from(last.host_len)) == Some(want.host_lba)
            && (want.is_trim() || last.start.checked_add(last.len) == Some(want.start));
        let Some(host_len) = last.host_len.checked_add(run) else {
            return false;
        };
        if !continues {
            return false;
        }
        last.host_len = host_len;
        if !want.is_trim() {
            last.len = host_len;
        }
        true
    }

    /// Adds `p` to strip `strip`, which must not precede the last one used,
    /// followed by list entries naming `listed`.
    fn push(&mut self, strip: usize, p: Piece, listed: &[u32]) -> bool {
        let idx = usize::from(self.hdr.nr_pieces);
        if strip < self.last_strip && idx > 0 {
            return false;
        }
        let lists = listed.len().div_ceil(LIST_IDS);
        let n = 1 + lists;
        if self.free_pieces() < n.saturating_add(self.keep) {
            return false;
        }
        let Some(slots) = self.hdr.pieces.get_mut(idx..idx + n) else {
            return false;
        };
        let Some((first, rest)) = slots.split_first_mut() else {
            return false;
        };
        *first = p;
        for (slot, ids) in rest.iter_mut().zip(listed.chunks(LIST_IDS)) {
            let mut l = [0u32; LIST_IDS];
            for (d, id) in l.iter_mut().zip(ids) {
                *d = *id;
            }
            *slot = Piece::list(l);
        }
        let Some(s) = self.hdr.strips.get_mut(strip) else {
            return false;
        };
        // At most MAX_PIECES (< 65536) entries, checked above.
        s.nr_pieces += n as u16;
        self.hdr.nr_pieces += n as u16;
        self.last_strip = strip;
        true
    }

    /// Checks the ids `also` that a piece of `volume` is to stand for.
    fn check_also(volume: u32, also: &[u32]) -> Result {
        if also.len() >= MAX_SHARERS {
            return Err(FormatError::BadVolumeId);
        }
        for (k, id) in also.iter().enumerate() {
            if *id == 0 || *id == volume || also.get(..k).is_some_and(|a| a.contains(id)) {
                return Err(FormatError::BadVolumeId);
            }
        }
        Ok(())
    }

    /// True when a new piece naming `also` itself would need list
    /// entries: more of them than are in the table or fit into it.
    fn needs_lists(&self, also: &[u32]) -> bool {
        let free = self.hdr.also.iter().filter(|t| **t == 0).count();
        let missing = also.iter().filter(|id| !self.hdr.also.contains(id)).count();
        missing > free
    }

    /// The `also` bits that name what they can of `also`, adding ids to
    /// the header's table while it has room; the others go to `listed`,
    /// whose count is returned with the bits.
    fn also_bits(&mut self, also: &[u32], listed: &mut [u32; MAX_SHARERS]) -> (u16, usize) {
        let mut bits = 0u16;
        let mut n = 0usize;
        for id in also {
            let i = match self.hdr.also.iter().position(|t| t == id) {
                Some(i) => Some(i),
                None => {
                    let i = self.hdr.also.iter().position(|t| *t == 0);
                    if let Some(t) = i.and_then(|i| self.hdr.also.get_mut(i)) {
                        *t = *id;
                    }
                    i
                }
            };
            match i {
                Some(i) => bits |= 1 << i,
                None => {
                    if let Some(l) = listed.get_mut(n) {
                        *l = *id;
                        n += 1;
                    }
                }
            }
        }
        (bits, n)
    }

    /// How the next piece for `volume` and `also` names them: its `also`
    /// field and the ids for list entries after it (in `listed`, their
    /// count returned). A set too large for the table is named once, by
    /// a piece with list entries; pieces right after it with the same set
    /// point back to it.
    fn name(
        &mut self,
        volume: u32,
        also: &[u32],
        listed: &mut [u32; MAX_SHARERS],
    ) -> Result<(u16, usize)> {
        Self::check_also(volume, also)?;
        if self.needs_lists(also) && self.last_stands_for(volume, also) {
            return Ok((SAME_AS_PREVIOUS, 0));
        }
        Ok(self.also_bits(also, listed))
    }

    /// Places up to `blocks` host blocks of `volume` from `host_lba` at the
    /// fill point of the data space.
    pub fn append(&mut self, volume: u32, host_lba: u64, blocks: u64) -> Result<Appended> {
        self.append_for(volume, &[], host_lba, blocks)
    }

    /// As [`Self::append`], for blocks that volumes `also` share with
    /// `volume` at the same host blocks (all distinct, fewer than
    /// [`MAX_SHARERS`]).
    pub fn append_for(
        &mut self,
        volume: u32,
        also: &[u32],
        host_lba: u64,
        blocks: u64,
    ) -> Result<Appended> {
        if volume == 0 {
            return Err(FormatError::BadVolumeId);
        }
        if blocks == 0 {
            return Err(FormatError::ZeroLength);
        }
        host_lba.checked_add(blocks).ok_or(FormatError::Overflow)?;
        if self.free_blocks() == 0 {
            return Err(FormatError::DoesNotFit);
        }
        let mut listed = [0u32; MAX_SHARERS];
        let (mut bits, mut nl) = self.name(volume, also, &mut listed)?;
        let sb = u64::from(self.hdr.strip_blocks);
        let total = geometry::data_blocks(&self.hdr);
        let start = self.fill;
        let mut placed = 0u64;
        while placed < blocks && self.fill < total {
            let strip = self.strip_of(self.fill)?;
            let off = self.fill.checked_rem(sb).ok_or(FormatError::BadStripSize)?;
            // Strips hold at most MAX_STRIP_BLOCKS (< 65536) blocks, so
            // `sb - off` fits a piece's 16-bit length.
            let run = (blocks - placed).min(sb - off);
            let run16 = u16::try_from(run).map_err(|_| FormatError::Overflow)?;
            let p = Piece {
                volume,
                host_lba: host_lba + placed,
                host_len: run16,
                start: u16::try_from(off).map_err(|_| FormatError::Overflow)?,
                len: run16,
                also: bits,
            };
            if !self.try_extend(strip, &p, run16, also) {
                if !self.push(strip, p, listed.get(..nl).unwrap_or(&[])) {
                    break;
                }
                if nl > 0 {
                    // The rest of the run, in the next strips, points back.
                    (bits, nl) = (SAME_AS_PREVIOUS, 0);
                }
            }
            let s = self
                .hdr
                .strips
                .get_mut(strip)
                .ok_or(FormatError::OutOfRange)?;
            s.active_count += u32::from(run16);
            self.fill += run;
            placed += run;
        }
        if placed == 0 {
            return Err(FormatError::DoesNotFit);
        }
        Ok(Appended {
            data_offset: start,
            blocks: placed,
        })
    }

    /// Records that `blocks` host blocks of `volume` from `host_lba` were
    /// discarded. Returns how many were recorded (a piece covers at most
    /// 65535); call again for the rest.
    pub fn append_trim(&mut self, volume: u32, host_lba: u64, blocks: u64) -> Result<u64> {
        self.append_trim_for(volume, &[], host_lba, blocks)
    }

    /// As [`Self::append_trim`], for volumes `also` too.
    pub fn append_trim_for(
        &mut self,
        volume: u32,
        also: &[u32],
        host_lba: u64,
        blocks: u64,
    ) -> Result<u64> {
        if volume == 0 {
            return Err(FormatError::BadVolumeId);
        }
        if blocks == 0 {
            return Err(FormatError::ZeroLength);
        }
        host_lba.checked_add(blocks).ok_or(FormatError::Overflow)?;
        let mut listed = [0u32; MAX_SHARERS];
        let (bits, nl) = self.name(volume, also, &mut listed)?;
        let strip = self.strip_of(self.fill)?.max(self.last_strip);
        let run = u16::try_from(blocks).unwrap_or(u16::MAX);
        let p = Piece {
            volume,
            host_lba,
            host_len: run,
            start: 0,
            len: 0,
            also: bits,
        };
        if self.try_extend(strip, &p, run, also) {
            return Ok(u64::from(run));
        }
        if self.push(strip, p, listed.get(..nl).unwrap_or(&[])) {
            Ok(u64::from(run))
        } else {
            Err(FormatError::DoesNotFit)
        }
    }

    /// Records the CRC32C of strip `i`'s data (parity strips included).
    pub fn set_data_crc(&mut self, i: usize, crc: u32) -> Result {
        if i >= usize::from(self.hdr.nr_strips) {
            return Err(FormatError::OutOfRange);
        }
        let s = self.hdr.strips.get_mut(i).ok_or(FormatError::OutOfRange)?;
        s.data_crc = crc;
        Ok(())
    }

    /// Encodes the header into `buf` (one block).
    pub fn encode(&self, buf: &mut [u8]) -> Result {
        self.hdr.encode(buf)
    }
}
