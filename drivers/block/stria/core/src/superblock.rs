// SPDX-License-Identifier: GPL-2.0

//! The member superblock: who this member is, which array it belongs to,
//! how the array is organised and which volumes it holds.
//!
//! Each member carries two copies, one near its start and one at its very
//! end (see [`locations`]); both are rewritten with a higher `generation`
//! on every update and [`pick_newest`] chooses between them at assembly.
//! The byte layout is in Documentation/stria-format.rst; the offsets below
//! are the source of truth for it.

use super::crc;
use super::error::FormatError;
use super::error::Result;
use super::geometry;
use super::geometry::RaidType;
use super::geometry::MAX_MEMBERS;
use super::geometry::MAX_STRIP_BLOCKS;
use super::header::StripeLocation;
use super::header::MAX_GROUPS;
use super::header::NONE_U8;
use super::le;
use super::uuid::Uuid;

/// Magic at offset 0 of a superblock.
pub const SB_MAGIC: [u8; 8] = *b"STRIA_SB";

/// Superblock layout version written by this code.
pub const SB_VERSION: u32 = 1;

/// Bytes of a superblock on disk.
pub const SB_BYTES: usize = 16384;

/// Blocks of a superblock on disk.
pub const SB_BLOCKS: u64 = (SB_BYTES / geometry::BLOCK_SIZE) as u64;

/// Block of the primary copy. Block 0 stays untouched so that partition
/// tables and other signatures there are neither clobbered nor mistaken
/// for ours, and ours is not found by a scan for theirs.
pub const SB_PRIMARY_BLOCK: u64 = 1;

/// Alignment of the data area (1 MiB), which keeps strips aligned to the
/// erase blocks and stripes of the devices underneath.
pub const DATA_ALIGN_BLOCKS: u64 = 256;

/// Smallest data area a member may have.
pub const MIN_DATA_BLOCKS: u64 = 256;

/// Fewest members in an array.
pub const MIN_MEMBERS: usize = 2;

/// Volume table entries.
pub const MAX_VOLUMES: usize = 64;

/// Largest volume, in blocks (4 PiB): what a map entry can address, and
/// small enough that its size in bytes or sectors fits in a `u64`.
pub const MAX_VOLUME_BLOCKS: u64 = 1 << 40;

/// Largest member, in blocks (4 PiB): the same bound, so that every block
/// address on a member times the block size fits in a `u64`.
pub const MAX_MEMBER_BLOCKS: u64 = 1 << 40;

/// Bytes of the array name.
pub const ARRAY_NAME_LEN: usize = 64;

/// Bytes of a volume name.
pub const VOLUME_NAME_LEN: usize = 32;

/// Feature bits. A bit set in `compat` may be ignored by code that does
/// not know it; one in `ro_compat` allows reading but not writing; one in
/// `incompat` forbids using the array at all.
pub mod feature {
    /// Map checkpoints are kept. Code that ignores them rebuilds the map
    /// by scanning, which is slower but correct.
    pub const COMPAT_MAP_CHECKPOINT: u64 = 1 << 0;
    /// Compat bits this code knows.
    pub const COMPAT_KNOWN: u64 = COMPAT_MAP_CHECKPOINT;

    /// Instant copies share blocks between volumes. Code unaware of the
    /// sharing would free shared blocks in GC, so it may only read.
    pub const RO_COMPAT_SHARED_BLOCKS: u64 = 1 << 0;
    /// Ro-compat bits this code knows.
    pub const RO_COMPAT_KNOWN: u64 = RO_COMPAT_SHARED_BLOCKS;

    /// The data area holds log-structured stripes with stripe headers,
    /// rather than only static layouts. Code that knows only the static
    /// RAID-0 layout cannot find any data.
    pub const INCOMPAT_LOG_STRIPES: u64 = 1 << 0;
    /// Stripe headers may hold volume list entries and pieces that stand
    /// for the volumes of the piece before them: blocks shared by more
    /// volumes than the header's `also` table names. Code that does not
    /// know them would take those headers for damage and lose the data.
    pub const INCOMPAT_VOLUME_LISTS: u64 = 1 << 1;
    /// Incompat bits this code knows.
    pub const INCOMPAT_KNOWN: u64 = INCOMPAT_LOG_STRIPES | INCOMPAT_VOLUME_LISTS;
}

/// Volume flag bits.
pub mod volume_flags {
    /// The volume refuses writes.
    pub const READ_ONLY: u32 = 1 << 0;
    /// The volume is an instant copy of `parent_id`.
    pub const COPY: u32 = 1 << 1;
    /// The volume is being deleted; its space is being returned.
    pub const DELETING: u32 = 1 << 2;
    /// Flags this code knows.
    pub const KNOWN: u32 = READ_ONLY | COPY | DELETING;
}

/// Byte offsets of the superblock fields.
pub mod off {
    /// Magic, 8 bytes.
    pub const MAGIC: usize = 0;
    /// Layout version, u32.
    pub const VERSION: usize = 8;
    /// Superblock size in bytes, u32.
    pub const SIZE: usize = 12;
    /// CRC32C of the superblock with this field zero, u32.
    pub const CRC: usize = 16;
    /// Compatible features, u64.
    pub const COMPAT: usize = 24;
    /// Read-only compatible features, u64.
    pub const RO_COMPAT: usize = 32;
    /// Incompatible features, u64.
    pub const INCOMPAT: usize = 40;
    /// Generation, u64.
    pub const GENERATION: usize = 48;
    /// Array creation time, seconds since the epoch, u64.
    pub const CTIME: usize = 56;
    /// Time of this write, seconds since the epoch, u64.
    pub const MTIME: usize = 64;
    /// Array UUID, 16 bytes.
    pub const ARRAY_UUID: usize = 72;
    /// This member's index, u8.
    pub const MEMBER_INDEX: usize = 88;
    /// Member count, u8.
    pub const MEMBER_COUNT: usize = 89;
    /// Stripe group count, u8.
    pub const GROUP_COUNT: usize = 90;
    /// Id the next new volume gets, u32.
    pub const NEXT_VOLUME_ID: usize = 92;
    /// First block of this member's data area, u64.
    pub const DATA_START: usize = 96;
    /// End (exclusive) of this member's data area, u64.
    pub const DATA_END: usize = 104;
    /// Sequence number of the log head hint, u64.
    pub const LOG_SEQ: usize = 112;
    /// Header LBA of the log head hint, u64.
    pub const LOG_LBA: usize = 120;
    /// Member of the log head hint, u8, 0xff for none.
    pub const LOG_MEMBER: usize = 128;
    /// Array name, NUL padded.
    pub const ARRAY_NAME: usize = 192;
    /// Member table: [`super::MAX_MEMBERS`] entries of `MEMBER_SIZE`.
    pub const MEMBERS: usize = 256;
    /// Bytes per member entry.
    pub const MEMBER_SIZE: usize = 32;
    /// Member entry: UUID, 16 bytes.
    pub const M_UUID: usize = 0;
    /// Member entry: size in blocks, u64.
    pub const M_SIZE: usize = 16;
    /// Member entry: state, u8.
    pub const M_STATE: usize = 24;
    /// Group table: [`super::MAX_GROUPS`] entries of `GROUP_SIZE`.
    pub const GROUPS: usize = MEMBERS + super::MAX_MEMBERS * MEMBER_SIZE;
    /// Bytes per group entry.
    pub const GROUP_SIZE: usize = 32;
    /// Group entry: member bitmap, u32.
    pub const G_MEMBERS: usize = 0;
    /// Group entry: default RAID type, u8.
    pub const G_RAID_TYPE: usize = 4;
    /// Group entry: default stripe width in strips, u8.
    pub const G_WIDTH: usize = 5;
    /// Group entry: strip size in blocks, u32.
    pub const G_STRIP_BLOCKS: usize = 8;
    /// Volume table: [`super::MAX_VOLUMES`] entries of `VOLUME_SIZE`.
    pub const VOLUMES: usize = 2048;
    /// Bytes per volume entry.
    pub const VOLUME_SIZE: usize = 128;
    /// Volume entry: id, u32 (0 for a free slot).
    pub const V_ID: usize = 0;
    /// Volume entry: flags, u32.
    pub const V_FLAGS: usize = 4;
    /// Volume entry: size in blocks, u64.
    pub const V_SIZE: usize = 8;
    /// Volume entry: layout kind, u8.
    pub const V_LAYOUT: usize = 16;
    /// Volume entry: copy metadata form, u8.
    pub const V_COPY_META: usize = 17;
    /// Volume entry: preferred stripe group, u8.
    pub const V_GROUP: usize = 18;
    /// Volume entry: divergence map form, u8.
    pub const V_DIVERGENCE: usize = 19;
    /// Volume entry: parent volume id, u32.
    pub const V_PARENT: usize = 20;
    /// Volume entry: origin (root of the copy tree) volume id, u32.
    pub const V_ORIGIN: usize = 24;
    /// Volume entry: copy generation, u64.
    pub const V_COPY_GEN: usize = 32;
    /// Volume entry: creation time, u64.
    pub const V_CTIME: usize = 40;
    /// Volume entry: name, NUL padded.
    pub const V_NAME: usize = 48;
    /// End of the volume table.
    pub const END_VOLUMES: usize = VOLUMES + super::MAX_VOLUMES * VOLUME_SIZE;
}

const _: () = assert!(off::GROUPS + MAX_GROUPS * off::GROUP_SIZE <= off::VOLUMES);
const _: () = assert!(off::END_VOLUMES <= SB_BYTES);

/// Health of a member as the array last recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemberState {
    /// In service.
    Active = 0,
    /// Failed or missing; its strips are rebuilt from redundancy.
    Failed = 1,
    /// Being rebuilt onto; not yet trusted for reads.
    Rebuilding = 2,
}

impl MemberState {
    fn from_u8(v: u8) -> Result<Self> {
        match v {
            0 => Ok(MemberState::Active),
            1 => Ok(MemberState::Failed),
            2 => Ok(MemberState::Rebuilding),
            _ => Err(FormatError::BadMemberEntry),
        }
    }
}

/// One member as every member's superblock records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    /// The member's UUID.
    pub uuid: Uuid,
    /// The member's size in blocks.
    pub size_blocks: u64,
    /// Its state.
    pub state: MemberState,
}

impl MemberEntry {
    /// An unused slot.
    pub const EMPTY: MemberEntry = MemberEntry {
        uuid: Uuid::NIL,
        size_blocks: 0,
        state: MemberState::Active,
    };
}

/// A RAID stripe group: members and the policy for new stripes on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StripeGroup {
    /// Bit i set when member i belongs to the group.
    pub members: u32,
    /// RAID type of new stripes.
    pub raid_type: RaidType,
    /// Strips per new stripe, parity included.
    pub width: u8,
    /// Data blocks per strip of new stripes.
    pub strip_blocks: u32,
}

impl StripeGroup {
    /// An unused slot.
    pub const EMPTY: StripeGroup = StripeGroup {
        members: 0,
        raid_type: RaidType::Raid0,
        width: 0,
        strip_blocks: 0,
    };
}

/// How a volume's forward map is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Layout {
    /// One pointer per block into log-structured stripes.
    FullPointer = 1,
    /// An extent described by a base and arithmetic (static layouts).
    LoadPointOffset = 2,
}

impl Layout {
    fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Layout::FullPointer),
            2 => Ok(Layout::LoadPointOffset),
            _ => Err(FormatError::BadVolume),
        }
    }
}

/// Which instant-copy metadata form a copy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CopyMeta {
    /// Not a copy.
    None = 0,
    /// A full pointer table of its own.
    FullPointerTable = 1,
    /// Pointers for changed blocks only.
    ChangedBlocks = 2,
    /// Load point and offset.
    LoadPointOffset = 3,
    /// A full bit map of the copied area.
    FullBitmap = 4,
    /// Multi-level bit maps.
    MultiLevelBitmap = 5,
    /// Partial-area bit maps with extent definitions.
    PartialAreaBitmap = 6,
}

impl CopyMeta {
    /// Bytes of map leaves from which a copy keeps pointers for changed
    /// blocks only: 512 leaves of 4 KiB, for 1 GiB written. Below, copying
    /// a leaf whole on the first write there costs at most this much
    /// again, and a changed block is found with one look-up fewer.
    pub const CHANGED_FROM_MAP_BYTES: u64 = 512 * 4096;

    /// The form the driver picks for a copy of a volume whose map has
    /// `map_bytes` of leaves: what the copy costs grows with the leaves
    /// written after it, so large maps keep only the changes.
    pub fn auto(map_bytes: u64) -> Self {
        if map_bytes >= Self::CHANGED_FROM_MAP_BYTES {
            CopyMeta::ChangedBlocks
        } else {
            CopyMeta::FullPointerTable
        }
    }

    /// Whether a copy may record it as the form of its divergence map: one
    /// of the bit-map forms, or none.
    pub fn tracks_divergence(self) -> bool {
        matches!(
            self,
            CopyMeta::None
                | CopyMeta::FullBitmap
                | CopyMeta::MultiLevelBitmap
                | CopyMeta::PartialAreaBitmap
        )
    }

    fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            0 => CopyMeta::None,
            1 => CopyMeta::FullPointerTable,
            2 => CopyMeta::ChangedBlocks,
            3 => CopyMeta::LoadPointOffset,
            4 => CopyMeta::FullBitmap,
            5 => CopyMeta::MultiLevelBitmap,
            6 => CopyMeta::PartialAreaBitmap,
            _ => return Err(FormatError::BadVolume),
        })
    }
}

/// A volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeEntry {
    /// Id, never 0 and never reused: stripe pieces name volumes by id, so a
    /// new volume must not inherit a deleted one's pieces.
    pub id: u32,
    /// [`volume_flags`] bits.
    pub flags: u32,
    /// Size in blocks.
    pub size_blocks: u64,
    /// How its map is kept.
    pub layout: Layout,
    /// Copy metadata form ([`CopyMeta::None`] unless a copy).
    pub copy_meta: CopyMeta,
    /// Form of the copy's divergence map, a bit-map form, as the copy was
    /// made ([`CopyMeta::None`] unless a copy; a copy may have none).
    pub divergence: CopyMeta,
    /// Preferred stripe group for new data.
    pub group: u8,
    /// Volume this one is a copy of, 0 if none.
    pub parent_id: u32,
    /// Root of the copy tree, 0 if not a copy.
    pub origin_id: u32,
    /// Log sequence number at which the copy was taken: pieces of the
    /// parent up to it are shared.
    pub copy_generation: u64,
    /// Creation time, seconds since the epoch.
    pub ctime: u64,
    /// Name, NUL padded printable ASCII.
    pub name: [u8; VOLUME_NAME_LEN],
}

impl VolumeEntry {
    /// A new thin, log-structured volume of group 0, not a copy.
    pub fn thin(id: u32, size_blocks: u64, name: [u8; VOLUME_NAME_LEN], ctime: u64) -> Self {
        VolumeEntry {
            id,
            flags: 0,
            size_blocks,
            layout: Layout::FullPointer,
            copy_meta: CopyMeta::None,
            divergence: CopyMeta::None,
            group: 0,
            parent_id: 0,
            origin_id: 0,
            copy_generation: 0,
            ctime,
            name,
        }
    }
}

/// A decoded superblock.
///
/// Fixed-size and `Copy` (about 6.5 KiB): keep it in preallocated memory and
/// fill it with [`Superblock::decode_into`] rather than on a kernel stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Compatible feature bits.
    pub compat: u64,
    /// Read-only compatible feature bits.
    pub ro_compat: u64,
    /// Incompatible feature bits.
    pub incompat: u64,
    /// Raised on every write; the higher of two valid copies wins.
    pub generation: u64,
    /// Array creation time, seconds since the epoch.
    pub ctime: u64,
    /// Time of this write, seconds since the epoch.
    pub mtime: u64,
    /// The array.
    pub array_uuid: Uuid,
    /// The array's name, NUL padded printable ASCII.
    pub array_name: [u8; ARRAY_NAME_LEN],
    /// This member's index in `members`.
    pub member_index: u8,
    /// Members in the array (2..=32).
    pub member_count: u8,
    /// Id for the next volume created.
    pub next_volume_id: u32,
    /// First block of this member's data area.
    pub data_start: u64,
    /// End (exclusive) of this member's data area.
    pub data_end: u64,
    /// Newest stripe known when this copy was written: a starting point
    /// for assembly, which still scans forward from it.
    pub log_head: Option<StripeLocation>,
    /// Sequence number of `log_head` (0 without one).
    pub log_seq: u64,
    /// Every member; entries from `member_count` on are empty.
    pub members: [MemberEntry; MAX_MEMBERS],
    /// Stripe groups in use (1..=8).
    pub group_count: u8,
    /// Stripe groups; entries from `group_count` on are empty.
    pub groups: [StripeGroup; MAX_GROUPS],
    /// Volume table; `None` is a free slot.
    pub volumes: [Option<VolumeEntry>; MAX_VOLUMES],
}

/// Which copy of the superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbCopy {
    /// The copy near the start of the member.
    Primary,
    /// The copy at the end of the member.
    Backup,
}

/// Where things lie on a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locations {
    /// First block of the primary superblock.
    pub primary_block: u64,
    /// First block of the backup superblock.
    pub backup_block: u64,
    /// First block of the data area.
    pub data_start: u64,
    /// End (exclusive) of the data area.
    pub data_end: u64,
}

/// Lays out a member of `member_blocks` blocks: primary superblock at
/// block 1, backup in the last [`SB_BLOCKS`] blocks, data area aligned to
/// [`DATA_ALIGN_BLOCKS`] in between.
pub fn locations(member_blocks: u64) -> Result<Locations> {
    let backup_block = member_blocks
        .checked_sub(SB_BLOCKS)
        .ok_or(FormatError::MemberTooSmall)?;
    let data_start = DATA_ALIGN_BLOCKS;
    let data_end = backup_block - backup_block % DATA_ALIGN_BLOCKS;
    if data_end < data_start + MIN_DATA_BLOCKS {
        return Err(FormatError::MemberTooSmall);
    }
    Ok(Locations {
        primary_block: SB_PRIMARY_BLOCK,
        backup_block,
        data_start,
        data_end,
    })
}

/// Chooses between the two decoded copies of a member's superblock.
///
/// With both valid the higher generation wins and a tie goes to the
/// primary; both must describe the same member of the same array, or the
/// member is ambiguous ([`FormatError::CopiesDisagree`]). With one valid,
/// it wins. With neither, the primary's error is returned unless it merely
/// found no magic, in which case the backup's error says more.
pub fn pick_newest<'a>(
    primary: Result<&'a Superblock>,
    backup: Result<&'a Superblock>,
) -> Result<(SbCopy, &'a Superblock)> {
    match (primary, backup) {
        (Ok(a), Ok(b)) => {
            let same = a.array_uuid == b.array_uuid
                && a.member_index == b.member_index
                && a.this_member().uuid == b.this_member().uuid;
            if !same {
                Err(FormatError::CopiesDisagree)
            } else if b.generation > a.generation {
                Ok((SbCopy::Backup, b))
            } else {
                Ok((SbCopy::Primary, a))
            }
        }
        (Ok(a), Err(_)) => Ok((SbCopy::Primary, a)),
        (Err(_), Ok(b)) => Ok((SbCopy::Backup, b)),
        (Err(FormatError::BadMagic), Err(e)) => Err(e),
        (Err(e), Err(_)) => Err(e),
    }
}

/// Checks that `name` is printable ASCII up to its first NUL and NUL after
/// it.
pub fn check_name(name: &[u8]) -> Result {
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let (text, pad) = name.split_at(len);
    if text.iter().all(|b| (0x20..0x7f).contains(b)) && le::all_zero(pad) {
        Ok(())
    } else {
        Err(FormatError::BadName)
    }
}

/// The text of a NUL-padded name ("" if it is not valid).
pub fn name_str(name: &[u8]) -> &str {
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    core::str::from_utf8(name.get(..len).unwrap_or(&[])).unwrap_or("")
}

/// Stores `s` NUL padded into `dst`.
pub fn set_name(dst: &mut [u8], s: &str) -> Result {
    if s.len() > dst.len() {
        return Err(FormatError::BadName);
    }
    check_name(s.as_bytes())?;
    if s.as_bytes().contains(&0) {
        return Err(FormatError::BadName);
    }
    dst.fill(0);
    le::put_bytes(dst, 0, s.as_bytes())
}

impl Superblock {
    /// A superblock with nothing in it (not valid until filled in).
    pub const EMPTY: Superblock = Superblock {
        compat: 0,
        ro_compat: 0,
        incompat: 0,
        generation: 0,
        ctime: 0,
        mtime: 0,
        array_uuid: Uuid::NIL,
        array_name: [0; ARRAY_NAME_LEN],
        member_index: 0,
        member_count: 0,
        next_volume_id: 1,
        data_start: 0,
        data_end: 0,
        log_head: None,
        log_seq: 0,
        members: [MemberEntry::EMPTY; MAX_MEMBERS],
        group_count: 0,
        groups: [StripeGroup::EMPTY; MAX_GROUPS],
        volumes: [None; MAX_VOLUMES],
    };

    /// The members in use.
    pub fn members(&self) -> &[MemberEntry] {
        self.members
            .get(..usize::from(self.member_count))
            .unwrap_or(&[])
    }

    /// The stripe groups in use.
    pub fn groups(&self) -> &[StripeGroup] {
        self.groups
            .get(..usize::from(self.group_count))
            .unwrap_or(&[])
    }

    /// This member's entry.
    pub fn this_member(&self) -> &MemberEntry {
        self.members
            .get(usize::from(self.member_index))
            .unwrap_or(&MemberEntry::EMPTY)
    }

    /// The volume with id `id`.
    pub fn volume(&self, id: u32) -> Option<&VolumeEntry> {
        self.volumes.iter().flatten().find(|v| v.id == id)
    }

    /// Index of a free volume slot.
    pub fn free_volume_slot(&self) -> Option<usize> {
        self.volumes.iter().position(Option::is_none)
    }

    /// Ro-compat bits set that this code does not know. Non-zero means the
    /// array may be read but must not be written.
    pub fn unknown_ro_compat(&self) -> u64 {
        self.ro_compat & !feature::RO_COMPAT_KNOWN
    }

    /// True when the array must be used read-only.
    pub fn needs_read_only(&self) -> bool {
        self.unknown_ro_compat() != 0
    }

    /// Checks every rule a superblock must obey. [`Self::encode`] and
    /// [`Self::decode`] both apply it.
    pub fn validate(&self) -> Result {
        if self.incompat & !feature::INCOMPAT_KNOWN != 0 {
            return Err(FormatError::UnknownIncompat);
        }
        if self.array_uuid.is_nil() {
            return Err(FormatError::BadMemberEntry);
        }
        check_name(&self.array_name)?;
        let count = usize::from(self.member_count);
        if !(MIN_MEMBERS..=MAX_MEMBERS).contains(&count) {
            return Err(FormatError::BadMemberCount);
        }
        if self.member_index >= self.member_count {
            return Err(FormatError::BadMemberIndex);
        }
        self.check_members()?;
        let me = self.this_member();
        let first = SB_PRIMARY_BLOCK + SB_BLOCKS;
        let limit = me.size_blocks.saturating_sub(SB_BLOCKS);
        if self.data_start < first || self.data_end <= self.data_start || self.data_end > limit {
            return Err(FormatError::BadDataArea);
        }
        match self.log_head {
            None if self.log_seq != 0 => return Err(FormatError::BadLogHead),
            None => {}
            Some(h) => {
                let m = self
                    .members()
                    .get(usize::from(h.member))
                    .ok_or(FormatError::BadLogHead)?;
                if h.lba >= m.size_blocks {
                    return Err(FormatError::BadLogHead);
                }
            }
        }
        self.check_groups()?;
        self.check_volumes()
    }

    fn check_members(&self) -> Result {
        let count = usize::from(self.member_count);
        for (i, m) in self.members.iter().enumerate() {
            if i >= count {
                if *m != MemberEntry::EMPTY {
                    return Err(FormatError::BadMemberEntry);
                }
                continue;
            }
            if m.uuid.is_nil() || m.size_blocks == 0 || m.size_blocks > MAX_MEMBER_BLOCKS {
                return Err(FormatError::BadMemberEntry);
            }
            let dup = self.members().iter().skip(i + 1).any(|o| o.uuid == m.uuid);
            if dup {
                return Err(FormatError::BadMemberEntry);
            }
        }
        Ok(())
    }

    fn check_groups(&self) -> Result {
        let count = usize::from(self.group_count);
        if count == 0 || count > MAX_GROUPS {
            return Err(FormatError::BadGroupCount);
        }
        // member_count <= 32 was checked by the caller.
        let all = u32::MAX >> (32 - u32::from(self.member_count));
        for (i, g) in self.groups.iter().enumerate() {
            if i >= count {
                if *g != StripeGroup::EMPTY {
                    return Err(FormatError::BadGroup);
                }
                continue;
            }
            if g.members == 0 || g.members & !all != 0 {
                return Err(FormatError::BadGroup);
            }
            let width = usize::from(g.width);
            if width > g.members.count_ones() as usize {
                return Err(FormatError::BadGroup);
            }
            let (p, q) = geometry::default_parity(g.raid_type, width, 0);
            geometry::check_layout(g.raid_type, width, p, q).map_err(|_| FormatError::BadGroup)?;
            if g.strip_blocks == 0 || g.strip_blocks > MAX_STRIP_BLOCKS {
                return Err(FormatError::BadGroup);
            }
        }
        Ok(())
    }

    fn check_volumes(&self) -> Result {
        for (i, slot) in self.volumes.iter().enumerate() {
            let Some(v) = slot else { continue };
            if v.id == 0 || v.id >= self.next_volume_id {
                return Err(FormatError::BadVolume);
            }
            let later = self.volumes.iter().skip(i + 1).flatten();
            if later.clone().any(|o| o.id == v.id) {
                return Err(FormatError::DuplicateVolume);
            }
            if v.flags & !volume_flags::KNOWN != 0 {
                return Err(FormatError::BadVolume);
            }
            if v.size_blocks == 0
                || v.size_blocks > MAX_VOLUME_BLOCKS
                || usize::from(v.group) >= usize::from(self.group_count)
            {
                return Err(FormatError::BadVolume);
            }
            let is_copy = v.flags & volume_flags::COPY != 0;
            let copy_ok = if is_copy {
                v.parent_id != 0
                    && v.origin_id != 0
                    && v.parent_id != v.id
                    && v.origin_id != v.id
                    && v.copy_meta != CopyMeta::None
                    && v.divergence.tracks_divergence()
            } else {
                v.parent_id == 0
                    && v.origin_id == 0
                    && v.copy_generation == 0
                    && v.copy_meta == CopyMeta::None
                    && v.divergence == CopyMeta::None
            };
            if !copy_ok {
                return Err(FormatError::BadVolume);
            }
            check_name(&v.name)?;
            if v.name.first() == Some(&0) {
                return Err(FormatError::BadName);
            }
        }
        Ok(())
    }

    /// Encodes into the first [`SB_BYTES`] of `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result {
        self.validate()?;
        let b = le::slice_mut(buf, 0, SB_BYTES)?;
        b.fill(0);
        le::put_bytes(b, off::MAGIC, &SB_MAGIC)?;
        le::put_u32(b, off::VERSION, SB_VERSION)?;
        le::put_u32(b, off::SIZE, SB_BYTES as u32)?;
        le::put_u64(b, off::COMPAT, self.compat)?;
        le::put_u64(b, off::RO_COMPAT, self.ro_compat)?;
        le::put_u64(b, off::INCOMPAT, self.incompat)?;
        le::put_u64(b, off::GENERATION, self.generation)?;
        le::put_u64(b, off::CTIME, self.ctime)?;
        le::put_u64(b, off::MTIME, self.mtime)?;
        le::put_bytes(b, off::ARRAY_UUID, &self.array_uuid.0)?;
        le::put_u8(b, off::MEMBER_INDEX, self.member_index)?;
        le::put_u8(b, off::MEMBER_COUNT, self.member_count)?;
        le::put_u8(b, off::GROUP_COUNT, self.group_count)?;
        le::put_u32(b, off::NEXT_VOLUME_ID, self.next_volume_id)?;
        le::put_u64(b, off::DATA_START, self.data_start)?;
        le::put_u64(b, off::DATA_END, self.data_end)?;
        le::put_u64(b, off::LOG_SEQ, self.log_seq)?;
        let (lm, ll) = self.log_head.map_or((NONE_U8, 0), |h| (h.member, h.lba));
        le::put_u64(b, off::LOG_LBA, ll)?;
        le::put_u8(b, off::LOG_MEMBER, lm)?;
        le::put_bytes(b, off::ARRAY_NAME, &self.array_name)?;
        for (i, m) in self.members().iter().enumerate() {
            let e = off::MEMBERS + i * off::MEMBER_SIZE;
            le::put_bytes(b, e + off::M_UUID, &m.uuid.0)?;
            le::put_u64(b, e + off::M_SIZE, m.size_blocks)?;
            le::put_u8(b, e + off::M_STATE, m.state as u8)?;
        }
        for (i, g) in self.groups().iter().enumerate() {
            let e = off::GROUPS + i * off::GROUP_SIZE;
            le::put_u32(b, e + off::G_MEMBERS, g.members)?;
            le::put_u8(b, e + off::G_RAID_TYPE, g.raid_type as u8)?;
            le::put_u8(b, e + off::G_WIDTH, g.width)?;
            le::put_u32(b, e + off::G_STRIP_BLOCKS, g.strip_blocks)?;
        }
        for (i, slot) in self.volumes.iter().enumerate() {
            let Some(v) = slot else { continue };
            let e = off::VOLUMES + i * off::VOLUME_SIZE;
            le::put_u32(b, e + off::V_ID, v.id)?;
            le::put_u32(b, e + off::V_FLAGS, v.flags)?;
            le::put_u64(b, e + off::V_SIZE, v.size_blocks)?;
            le::put_u8(b, e + off::V_LAYOUT, v.layout as u8)?;
            le::put_u8(b, e + off::V_COPY_META, v.copy_meta as u8)?;
            le::put_u8(b, e + off::V_GROUP, v.group)?;
            le::put_u8(b, e + off::V_DIVERGENCE, v.divergence as u8)?;
            le::put_u32(b, e + off::V_PARENT, v.parent_id)?;
            le::put_u32(b, e + off::V_ORIGIN, v.origin_id)?;
            le::put_u64(b, e + off::V_COPY_GEN, v.copy_generation)?;
            le::put_u64(b, e + off::V_CTIME, v.ctime)?;
            le::put_bytes(b, e + off::V_NAME, &v.name)?;
        }
        let sum = crc::crc32c_skip_field(b, off::CRC).ok_or(FormatError::BufferTooSmall)?;
        le::put_u32(b, off::CRC, sum)
    }

    /// Decodes and validates one superblock copy.
    ///
    /// Unknown incompat features are refused; unknown ro-compat features
    /// are accepted and reported by [`Self::needs_read_only`]. Reserved
    /// bytes are not interpreted (a later compat feature may use them) but
    /// are covered by the checksum.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut sb = Superblock::EMPTY;
        sb.decode_into(buf)?;
        Ok(sb)
    }

    /// Like [`Self::decode`], filling `self`. On error the contents of
    /// `self` are unspecified.
    pub fn decode_into(&mut self, buf: &[u8]) -> Result {
        let b = le::slice(buf, 0, SB_BYTES)?;
        if le::array::<8>(b, off::MAGIC)? != SB_MAGIC {
            return Err(FormatError::BadMagic);
        }
        if le::get_u32(b, off::VERSION)? != SB_VERSION {
            return Err(FormatError::BadVersion);
        }
        if le::get_u32(b, off::SIZE)? as usize != SB_BYTES {
            return Err(FormatError::BadSize);
        }
        let sum = crc::crc32c_skip_field(b, off::CRC).ok_or(FormatError::BufferTooSmall)?;
        if le::get_u32(b, off::CRC)? != sum {
            return Err(FormatError::BadChecksum);
        }
        self.incompat = le::get_u64(b, off::INCOMPAT)?;
        if self.incompat & !feature::INCOMPAT_KNOWN != 0 {
            return Err(FormatError::UnknownIncompat);
        }
        self.compat = le::get_u64(b, off::COMPAT)?;
        self.ro_compat = le::get_u64(b, off::RO_COMPAT)?;
        self.generation = le::get_u64(b, off::GENERATION)?;
        self.ctime = le::get_u64(b, off::CTIME)?;
        self.mtime = le::get_u64(b, off::MTIME)?;
        self.array_uuid = Uuid(le::array(b, off::ARRAY_UUID)?);
        self.member_index = le::get_u8(b, off::MEMBER_INDEX)?;
        self.member_count = le::get_u8(b, off::MEMBER_COUNT)?;
        self.group_count = le::get_u8(b, off::GROUP_COUNT)?;
        self.next_volume_id = le::get_u32(b, off::NEXT_VOLUME_ID)?;
        self.data_start = le::get_u64(b, off::DATA_START)?;
        self.data_end = le::get_u64(b, off::DATA_END)?;
        self.log_seq = le::get_u64(b, off::LOG_SEQ)?;
        let log_lba = le::get_u64(b, off::LOG_LBA)?;
        self.log_head = match le::get_u8(b, off::LOG_MEMBER)? {
            NONE_U8 if log_lba == 0 => None,
            NONE_U8 => return Err(FormatError::BadLogHead),
            member => Some(StripeLocation {
                member,
                lba: log_lba,
            }),
        };
        self.array_name = le::array(b, off::ARRAY_NAME)?;
        for (i, m) in self.members.iter_mut().enumerate() {
            let e = off::MEMBERS + i * off::MEMBER_SIZE;
            *m = MemberEntry {
                uuid: Uuid(le::array(b, e + off::M_UUID)?),
                size_blocks: le::get_u64(b, e + off::M_SIZE)?,
                state: MemberState::from_u8(le::get_u8(b, e + off::M_STATE)?)?,
            };
        }
        for (i, g) in self.groups.iter_mut().enumerate() {
            let e = off::GROUPS + i * off::GROUP_SIZE;
            *g = StripeGroup {
                members: le::get_u32(b, e + off::G_MEMBERS)?,
                raid_type: RaidType::from_u8(le::get_u8(b, e + off::G_RAID_TYPE)?)
                    .map_err(|_| FormatError::BadGroup)?,
                width: le::get_u8(b, e + off::G_WIDTH)?,
                strip_blocks: le::get_u32(b, e + off::G_STRIP_BLOCKS)?,
            };
        }
        for (i, slot) in self.volumes.iter_mut().enumerate() {
            let e = off::VOLUMES + i * off::VOLUME_SIZE;
            let raw = le::slice(b, e, off::V_NAME + VOLUME_NAME_LEN)?;
            let id = le::get_u32(raw, off::V_ID)?;
            if id == 0 {
                if !le::all_zero(raw) {
                    return Err(FormatError::BadVolume);
                }
                *slot = None;
                continue;
            }
            *slot = Some(VolumeEntry {
                id,
                flags: le::get_u32(raw, off::V_FLAGS)?,
                size_blocks: le::get_u64(raw, off::V_SIZE)?,
                layout: Layout::from_u8(le::get_u8(raw, off::V_LAYOUT)?)?,
                copy_meta: CopyMeta::from_u8(le::get_u8(raw, off::V_COPY_META)?)?,
                divergence: CopyMeta::from_u8(le::get_u8(raw, off::V_DIVERGENCE)?)?,
                group: le::get_u8(raw, off::V_GROUP)?,
                parent_id: le::get_u32(raw, off::V_PARENT)?,
                origin_id: le::get_u32(raw, off::V_ORIGIN)?,
                copy_generation: le::get_u64(raw, off::V_COPY_GEN)?,
                ctime: le::get_u64(raw, off::V_CTIME)?,
                name: le::array(raw, off::V_NAME)?,
            });
        }
        self.validate()
    }
}
