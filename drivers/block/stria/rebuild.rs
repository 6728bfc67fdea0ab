// SPDX-License-Identifier: GPL-2.0

//! Rebuilding every volume's map from the members alone.
//!
//! 1. Scan: each member's data area is read in chunks of a megabyte for
//!    stripe headers. A valid header of this array that names the block it
//!    was read from starts a strip, whose data the scan then skips.
//! 2. Judge: header copies are grouped by sequence number. The newest
//!    `durable_seq` any header claims says which stripes a flush covered:
//!    those are trusted even if some header copies are damaged (any one
//!    copy describes the whole stripe). A stripe above it may have been
//!    torn by a power cut: it is kept only if every strip's header is
//!    there and every strip's data matches its checksum; otherwise its
//!    headers are erased so it can never be mistaken for valid later.
//! 3. Replay: trusted stripes in sequence order, their pieces in order,
//!    each setting the map of its volume; the newest write of a block wins.

// Sizes and offsets here come from members or from user space.
#![deny(clippy::arithmetic_side_effects)]

use crate::alloc::Space;
use crate::format::crc;
use crate::format::error::FormatError;
use crate::format::geometry;
use crate::format::geometry::block_offset;
use crate::format::geometry::RaidType;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::header;
use crate::format::header::DataArea;
use crate::format::header::StripeHeader;
use crate::format::header::StripeLocation;
use crate::format::uuid::Uuid;
use crate::map::diverge;
use crate::map::diverge::Divergence;
use crate::map::Directory;
use crate::map::Entry;
use crate::map::Form;
use crate::map::LEAF_ENTRIES;
use crate::members;
use crate::members::Member;
use crate::writer::Start;
use crate::writer::Volume;
use kernel::prelude::*;
use kernel::time::Instant;
use kernel::time::Monotonic;

/// Blocks read at once where no strip continues.
const CHUNK_BLOCKS: u64 = 256;

/// One header copy found by the scan.
#[derive(Clone, Copy, Debug)]
struct Copy {
    seq: u64,
    lba: u64,
    durable_seq: u64,
    /// The stripe written before this one.
    prev: Option<StripeLocation>,
    member: u8,
    nr_strips: u8,
    /// For the copy in strip 0: its pieces in [`Rec`]s from this index on.
    recs: Option<(u32, u32)>,
    /// What member space needs to know of the stripe.
    shape: Shape,
}

/// A stripe's shape, as member space accounts it.
#[derive(Clone, Copy, Debug)]
struct Shape {
    raid: RaidType,
    /// Blocks per strip, the header included.
    span: u64,
    /// Data blocks.
    cap: u32,
    trims: bool,
    /// Piece table entries.
    pieces: u16,
}

impl Shape {
    fn of(h: &StripeHeader) -> Self {
        let data = geometry::data_strip_count(h) as u32;
        Self {
            raid: h.raid_type,
            span: geometry::strip_span(h),
            cap: data.saturating_mul(h.strip_blocks),
            trims: h.pieces().any(|p| p.is_trim()),
            pieces: h.nr_pieces,
        }
    }
}

/// A stripe kept, for member space: its strips are `locs[first..first + n]`.
#[derive(Clone, Copy, Debug)]
struct Claim {
    seq: u64,
    first: u32,
    n: u8,
    shape: Shape,
}

/// Records that stripe `seq` of `shape` lies at `at`.
fn add_claim(
    claims: &mut KVVec<Claim>,
    locs: &mut KVVec<StripeLocation>,
    seq: u64,
    shape: Shape,
    at: impl Iterator<Item = StripeLocation>,
) -> Result {
    let first = u32::try_from(locs.len()).map_err(|_| ENOMEM)?;
    for l in at {
        locs.push(l, GFP_KERNEL)?;
    }
    let n = locs
        .len()
        .checked_sub(first as usize)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or(EINVAL)?;
    claims.push(
        Claim {
            seq,
            first,
            n,
            shape,
        },
        GFP_KERNEL,
    )?;
    Ok(())
}

/// A host piece as replay needs it, kept from the scan so that a stripe
/// need not be read twice: 24 bytes per piece, for the time of assembly.
#[derive(Clone, Copy, Debug)]
struct Rec {
    host_lba: u64,
    /// First member block of the data, or `None` for a trim record.
    at: Option<(u8, u64)>,
    volume: u32,
    len: u16,
}

/// Keeps the pieces of `h` in `recs`, one per volume a piece stands for;
/// returns their range there.
fn keep_pieces(h: &StripeHeader, recs: &mut KVVec<Rec>) -> Result<(u32, u32)> {
    let start = u32::try_from(recs.len()).map_err(|_| ENOMEM)?;
    for (i, p) in h.pieces_with_strip() {
        let run = geometry::piece_run(h, i, p).map_err(|_| EINVAL)?;
        for volume in h.volumes_of(p) {
            recs.push(
                Rec {
                    host_lba: p.host_lba,
                    at: run.map(|r| (r.member, r.lba)),
                    volume,
                    len: p.host_len,
                },
                GFP_KERNEL,
            )?;
        }
    }
    let n = u32::try_from(recs.len())
        .map_err(|_| ENOMEM)?
        .checked_sub(start)
        .ok_or(EINVAL)?;
    Ok((start, n))
}

/// What the rebuild found.
pub(crate) struct Found {
    /// Where the writer goes on.
    pub(crate) start: Start,
}

fn io_err(m: usize, lba: u64, e: Error) -> Error {
    pr_err!(
        "member {}: read error at block {}: error {}\n",
        m,
        lba,
        e.to_errno()
    );
    e
}

/// Sorts `v` by `key`, in place and without recursion: core's sorts recurse
/// with kilobytes of stack per level, too much for a kernel stack when
/// sorting a full array's worth of headers.
fn heap_sort<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    let less = |v: &[T], a: usize, b: usize| match (v.get(a), v.get(b)) {
        (Some(x), Some(y)) => key(x) < key(y),
        _ => false,
    };
    let sift = |v: &mut [T], mut root: usize, end: usize| {
        while let Some(mut child) = root.checked_mul(2).and_then(|c| c.checked_add(1)) {
            if child >= end {
                break;
            }
            // `child < end`, so `child + 1` cannot overflow.
            let right = child.saturating_add(1);
            if right < end && less(v, child, right) {
                child = right;
            }
            if !less(v, root, child) {
                break;
            }
            v.swap(root, child);
            root = child;
        }
    };
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

/// Reads `blocks` blocks of member `m` at `lba` into `buf`.
fn read(member: &Member, m: usize, lba: u64, buf: &mut KVec<u8>, blocks: u64) -> Result {
    let len = geometry::blocks_to_bytes(blocks).map_err(|_| EINVAL)?;
    let at = block_offset(lba).ok_or(EINVAL)?;
    buf.resize(len, 0, GFP_KERNEL)?;
    member.bdev.read_at(at, buf).map_err(|e| io_err(m, lba, e))
}

/// Decodes into `hdr` the header copy `block` read from member `m` at
/// `lba`, and checks that it belongs to the array of `uuid`, that its
/// strips lie in the data areas of `members` and that it sits where it
/// says; returns the strip it heads.
fn check_copy(
    hdr: &mut StripeHeader,
    block: &[u8],
    uuid: &Uuid,
    members: &[Member],
    m: u8,
    lba: u64,
) -> core::result::Result<usize, FormatError> {
    hdr.decode_into(block)?;
    hdr.check_array(uuid)?;
    hdr.check_areas(|i| members::area_of(members, i))?;
    hdr.check_location(m, lba)
}

/// Scans member `m` of `members` for header copies.
fn scan_member(
    members: &[Member],
    m: usize,
    uuid: &Uuid,
    hdr: &mut StripeHeader,
    copies: &mut KVVec<Copy>,
    recs: &mut KVVec<Rec>,
    bad: &mut u64,
) -> Result {
    let member = members.get(m).ok_or(EINVAL)?;
    let DataArea { start, end } = member.area();
    let mut buf = KVec::new();
    let mut pos = start;
    let m8 = u8::try_from(m).map_err(|_| EINVAL)?;
    while pos < end {
        // Large reads: under emulation, and on most devices, one read of a
        // megabyte costs less than a dozen reads of one block each.
        let want = CHUNK_BLOCKS.min(end.saturating_sub(pos));
        read(member, m, pos, &mut buf, want)?;
        let mut j = 0u64;
        while j < want {
            // `j < want <= CHUNK_BLOCKS`, and `pos + want <= end`.
            let off = geometry::blocks_to_bytes(j).map_err(|_| EINVAL)?;
            let block = buf.get(off..off.saturating_add(BLOCK_SIZE)).ok_or(EINVAL)?;
            if !header::looks_like_header(block) {
                j = j.saturating_add(1);
                continue;
            }
            let lba = pos.saturating_add(j);
            let verdict = check_copy(hdr, block, uuid, members, m8, lba);
            match verdict {
                Ok(strip) => {
                    let kept = if strip == 0 {
                        Some(keep_pieces(hdr, recs)?)
                    } else {
                        None
                    };
                    copies.push(
                        Copy {
                            seq: hdr.seq,
                            lba,
                            durable_seq: hdr.durable_seq,
                            prev: hdr.prev,
                            member: m8,
                            nr_strips: hdr.nr_strips,
                            recs: kept,
                            shape: Shape::of(hdr),
                        },
                        GFP_KERNEL,
                    )?;
                    // The strip's data cannot hold a header of its own
                    // location: skip it.
                    j = j.saturating_add(geometry::strip_span(hdr));
                }
                Err(FormatError::WrongArray) => {
                    // Left by an earlier array on this disk: not ours.
                    j = j.saturating_add(1);
                }
                Err(e) => {
                    pr_warn!(
                        "member {} block {}: stripe header ignored: {}\n",
                        m,
                        lba,
                        e.as_str()
                    );
                    *bad = bad.saturating_add(1);
                    j = j.saturating_add(1);
                }
            }
        }
        // A strip that runs past the chunk moves the next read past it.
        pos = pos.saturating_add(j);
    }
    Ok(())
}

/// Reads strip `i` of `h` and checks its data, [`CHUNK_BLOCKS`] at a
/// time: a strip may be larger than one allocation can be.
fn strip_ok(members: &[Member], h: &StripeHeader, i: usize, buf: &mut KVec<u8>) -> Result<bool> {
    let s = h.strips().get(i).ok_or(EINVAL)?;
    let m = usize::from(s.member);
    let member = members.get(m).ok_or(EINVAL)?;
    let first = geometry::strip_data_lba(s).map_err(|_| EINVAL)?;
    let blocks = u64::from(h.strip_blocks);
    let mut crc = !0u32;
    let mut done = 0u64;
    while done < blocks {
        let n = CHUNK_BLOCKS.min(blocks.saturating_sub(done));
        read(member, m, first.checked_add(done).ok_or(EINVAL)?, buf, n)?;
        crc = crc::update(crc, buf);
        done = done.saturating_add(n);
    }
    Ok(h.verify_strip_crc(i, !crc).is_ok())
}

/// Overwrites the header copies of a torn stripe with zeros.
fn erase(members: &[Member], copies: &[Copy]) -> Result {
    let zero = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
    for c in copies {
        if let Some(m) = members.get(usize::from(c.member)) {
            m.bdev.write_at(block_offset(c.lba).ok_or(EINVAL)?, &zero)?;
        }
    }
    Ok(())
}

/// Replays one piece into the map of its volume; returns whether it named
/// no known volume or lay beyond one's end.
fn apply(r: &Rec, vols: &[&Volume]) -> Result<bool> {
    let Some(vol) = vols.iter().find(|v| v.id == r.volume) else {
        return Ok(true);
    };
    let n = u64::from(r.len);
    if r.host_lba
        .checked_add(n)
        .is_none_or(|e| e > vol.map.size_blocks())
    {
        return Ok(true);
    }
    let Some((member, lba)) = r.at else {
        // A trim record: what it covers reads as zeros again. A leaf it
        // shares with a copy is copied first.
        vol.map.prepare_with(r.host_lba, n, false, GFP_KERNEL)?;
        vol.map.lock().unmap(r.host_lba, n, |_| {})?;
        return Ok(false);
    };
    vol.map.prepare(r.host_lba, n, GFP_KERNEL)?;
    let mut m = vol.map.lock();
    for b in 0..n {
        // In range: checked against the volume above and, for `lba`, the
        // header's strips against the members' data areas.
        let (Some(host), Some(block)) = (r.host_lba.checked_add(b), lba.checked_add(b)) else {
            return Err(EINVAL);
        };
        m.set(host, Entry::Disk { member, block })?;
    }
    Ok(false)
}

/// Replays the pieces of `h` into the maps of `vols`; returns the pieces
/// that named no known volume or lay beyond one's end.
fn replay(h: &StripeHeader, vols: &[&Volume]) -> Result<u64> {
    let mut skipped = 0u64;
    for (i, p) in h.pieces_with_strip() {
        let run = geometry::piece_run(h, i, p).map_err(|_| EINVAL)?;
        for volume in h.volumes_of(p) {
            let r = Rec {
                host_lba: p.host_lba,
                at: run.map(|r| (r.member, r.lba)),
                volume,
                len: p.host_len,
            };
            skipped = skipped.saturating_add(u64::from(apply(&r, vols)?));
        }
    }
    Ok(skipped)
}

/// An instant copy as the volume table records it: `vols[child]` was
/// made of `vols[parent]` at sequence number `at` (pieces of stripes below
/// it are shared).
pub(crate) struct CopyEvent {
    /// The copy.
    pub(crate) child: usize,
    /// Its source.
    pub(crate) parent: usize,
    /// First sequence number not shared.
    pub(crate) at: u64,
    /// What both keep where they write into what they share.
    pub(crate) form: Form,
    /// The form of the copy's divergence map, if it keeps one.
    pub(crate) divergence: Option<diverge::Form>,
}

/// Makes every copy of `events` taken before stripe `seq`, in order.
fn copies_before(events: &[CopyEvent], next: &mut usize, seq: u64, vols: &[&Volume]) -> Result {
    while let Some(e) = events.get(*next).filter(|e| e.at <= seq) {
        *next = next.saturating_add(1);
        let (Some(c), Some(p)) = (vols.get(e.child), vols.get(e.parent)) else {
            continue;
        };
        c.map.share_from(&p.map, e.form, None).inspect_err(|_| {
            pr_err!("copy {} of volume {}: sizes differ\n", c.id, p.id);
        })?;
    }
    Ok(())
}

/// Gives copy `c` of `p` its divergence map again, from where their
/// rebuilt maps differ. A copy left without one (memory is short) is
/// compared map to map.
fn seed_divergence(c: &Volume, p: &Volume, form: diverge::Form) {
    let blocks = c.map.size_blocks().min(p.map.size_blocks());
    // A copy grown past what its form takes gets the one the driver picks.
    // Copies of one source share its side where they can: all of it is
    // marked from here on.
    let make = |form| {
        Divergence::new(
            c.id,
            p.id,
            blocks,
            form,
            p.map.shareable(p.id, blocks, form),
        )
    };
    let d = make(form).or_else(|_| {
        let areas = c.map.stats().leaf_bytes / (LEAF_ENTRIES * 8);
        make(diverge::Form::auto(blocks, areas))
    });
    let r = d.and_then(|d| {
        // The differences found go to the copy's side.
        c.map.seed(&p.map, &d)?;
        p.map.reserve_track()?;
        p.map.add_source(&d)?;
        c.map.watch(&d);
        Ok(())
    });
    if let Err(e) = r {
        pr_warn!(
            "copy {}: no divergence map ({:?}); diffs compare the maps\n",
            c.id,
            e
        );
    }
}

/// Rebuilds the maps of `vols` from the members of array `uuid`, making
/// the copies of `events` at their points in the log, and the member
/// space, in chunks of `chunk_blocks`, with the live blocks of every
/// stripe. The maps of `ghosts` (deleted volumes whose copies live on)
/// are let go of at the end, and the others cut to `sizes`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rebuild(
    members: &[Member],
    uuid: &Uuid,
    vols: &[&Volume],
    sizes: &[u64],
    events: &[CopyEvent],
    ghosts: &[usize],
    chunk_blocks: u64,
) -> Result<Found> {
    let mut order = KVec::with_capacity(events.len(), GFP_KERNEL)?;
    for (i, e) in events.iter().enumerate() {
        order.push((e.at, i), GFP_KERNEL)?;
    }
    heap_sort(&mut order, |o| *o);
    let mut sorted = KVec::with_capacity(events.len(), GFP_KERNEL)?;
    for (_, i) in order.iter() {
        let e = events.get(*i).ok_or(EINVAL)?;
        sorted.push(
            CopyEvent {
                child: e.child,
                parent: e.parent,
                at: e.at,
                form: e.form,
                divergence: e.divergence,
            },
            GFP_KERNEL,
        )?;
    }
    let mut next_event = 0usize;
    let t0 = Instant::<Monotonic>::now();
    let mut areas = KVec::with_capacity(members.len(), GFP_KERNEL)?;
    for m in members {
        let a = m.area();
        areas.push((a.start, a.end), GFP_KERNEL)?;
    }
    let mut space = Space::new(&areas, chunk_blocks)?;
    let mut claims: KVVec<Claim> = KVVec::new();
    let mut claim_locs: KVVec<StripeLocation> = KVVec::new();
    let mut hdr = KBox::new(StripeHeader::EMPTY, GFP_KERNEL)?;
    let mut copies: KVVec<Copy> = KVVec::new();
    let mut recs: KVVec<Rec> = KVVec::new();
    let mut bad = 0u64;
    for m in 0..members.len() {
        scan_member(members, m, uuid, &mut hdr, &mut copies, &mut recs, &mut bad)?;
    }
    heap_sort(&mut copies, |c| (c.seq, c.member, c.lba));
    // A clean stop records the end of the log in the superblocks.
    let durable = copies
        .iter()
        .map(|c| c.durable_seq)
        .max()
        .unwrap_or(0)
        .max(crate::members::log_seq(members));
    let max_seq = copies.iter().map(|c| c.seq).max().unwrap_or(0);

    // Where each header copy is, and its sequence number.
    let mut at: KVVec<(u8, u64, u64)> = KVVec::with_capacity(copies.len(), GFP_KERNEL)?;
    for c in copies.iter() {
        at.push((c.member, c.lba, c.seq), GFP_KERNEL)?;
    }
    heap_sort(&mut at, |a| (a.0, a.1));
    let mut buf = KVec::new();
    let mut stripes = 0u64;
    let mut torn = 0u64;
    let mut skipped = 0u64;
    let mut newest: Option<(u64, StripeLocation)> = None;
    // The strips of every stripe kept, and each one's link to the stripe
    // written before it: a stripe whose every copy is gone leaves a gap.
    let mut places: KVVec<(u8, u64)> = KVVec::with_capacity(copies.len(), GFP_KERNEL)?;
    let mut links: KVVec<(u64, StripeLocation)> = KVVec::new();
    let mut i = 0usize;
    while i < copies.len() {
        let seq = copies.get(i).map_or(0, |c| c.seq);
        let n = copies.iter().skip(i).take_while(|c| c.seq == seq).count();
        // `n >= 1`: the copy at `i` counts.
        let end = i.saturating_add(n).max(i.saturating_add(1));
        let group = copies.get(i..end).ok_or(EINVAL)?;
        i = end;
        let Some(first) = group.first() else { continue };
        copies_before(&sorted, &mut next_event, seq, vols)?;
        let want = usize::from(first.nr_strips);
        let kept = group.iter().find(|c| c.recs.is_some());
        // A stripe found whole and vouched for by a flush is replayed from
        // what the scan kept; any other is read again.
        if let (true, true, Some(c), Some((start, count))) =
            (seq <= durable, n == want, kept, kept.and_then(|c| c.recs))
        {
            for g in group {
                places.push((g.member, g.lba), GFP_KERNEL)?;
            }
            let at = group.iter().map(|g| StripeLocation {
                member: g.member,
                lba: g.lba,
            });
            add_claim(&mut claims, &mut claim_locs, seq, c.shape, at)?;
            if let Some(p) = c.prev {
                links.push((seq, p), GFP_KERNEL)?;
            }
            let a = start as usize;
            let b = a.checked_add(count as usize).ok_or(EINVAL)?;
            for r in recs.get(a..b).ok_or(EINVAL)? {
                skipped = skipped.saturating_add(u64::from(apply(r, vols)?));
            }
            stripes = stripes.saturating_add(1);
            newest = Some((
                seq,
                StripeLocation {
                    member: c.member,
                    lba: c.lba,
                },
            ));
            continue;
        }
        let member = members.get(usize::from(first.member)).ok_or(EINVAL)?;
        read(member, usize::from(first.member), first.lba, &mut buf, 1)?;
        // Read again: checked again, as the scan checked it.
        check_copy(&mut hdr, &buf, uuid, members, first.member, first.lba).map_err(|e| {
            pr_err!(
                "member {} block {}: stripe header changed under assembly: {}\n",
                first.member,
                first.lba,
                e.as_str()
            );
            EIO
        })?;
        let want = usize::from(hdr.nr_strips);
        let mut whole = n == want;
        if seq > durable && whole {
            for s in 0..want {
                if !strip_ok(members, &hdr, s, &mut buf)? {
                    whole = false;
                    break;
                }
            }
        }
        if seq > durable && !whole {
            pr_warn!(
                "stripe {}: torn (written after the last flush, {} of {} strips intact): ignored\n",
                seq,
                n,
                want
            );
            erase(members, group)?;
            torn = torn.saturating_add(1);
            continue;
        }
        // A copy missing because a newer stripe took its chunk (after this
        // one was freed) is no damage.
        let reused = hdr
            .strips()
            .iter()
            .filter(|st| {
                at.binary_search_by(|a| (a.0, a.1).cmp(&(st.member, st.lba)))
                    .ok()
                    .and_then(|i| at.get(i))
                    .is_some_and(|a| a.2 > seq)
            })
            .count();
        if n.saturating_add(reused) < want {
            pr_warn!(
                "stripe {}: {} of {} header copies usable; using the others\n",
                seq,
                n,
                want
            );
        }
        for st in hdr.strips() {
            places.push((st.member, st.lba), GFP_KERNEL)?;
        }
        let at = hdr.strips().iter().map(|s| StripeLocation {
            member: s.member,
            lba: s.lba,
        });
        add_claim(&mut claims, &mut claim_locs, seq, Shape::of(&hdr), at)?;
        if let Some(p) = hdr.prev {
            links.push((seq, p), GFP_KERNEL)?;
        }
        skipped = skipped.saturating_add(replay(&hdr, vols)?);
        stripes = stripes.saturating_add(1);
        if let Ok(loc) = hdr.location(0) {
            newest = Some((seq, loc));
        }
    }
    copies_before(&sorted, &mut next_event, u64::MAX, vols)?;
    for g in ghosts {
        if let Some(v) = vols.get(*g) {
            drop(v.map.release_all(|_| {})?);
        }
    }
    for (i, (v, size)) in vols.iter().zip(sizes).enumerate() {
        if v.map.size_blocks() != *size && !ghosts.contains(&i) {
            let dir = Directory::new(*size)?;
            drop(v.map.resize(dir, *size, |_| {})?);
        }
    }
    for e in events {
        if ghosts.contains(&e.child) || ghosts.contains(&e.parent) {
            continue;
        }
        if let (Some(c), Some(p), Some(form)) =
            (vols.get(e.child), vols.get(e.parent), e.divergence)
        {
            seed_divergence(c, p, form);
        }
    }
    heap_sort(&mut places, |p| *p);
    let mut missing = 0u64;
    for (seq, p) in links.iter() {
        if places.binary_search(&(p.member, p.lba)).is_err() {
            pr_warn!(
                "stripe {}: the stripe written before it (member {} block {}) is gone\n",
                seq,
                p.member,
                p.lba
            );
            missing = missing.saturating_add(1);
        }
    }
    if skipped > 0 {
        pr_warn!(
            "{} host pieces named no volume or lay beyond one: ignored\n",
            skipped
        );
    }
    // Whatever was found (and erased) is now on stable storage.
    for m in members {
        m.bdev.flush()?;
    }
    // Newest first: a chunk an older stripe names but a newer one holds
    // was reused, so the older stripe had been freed.
    for c in claims.iter().rev() {
        let a = c.first as usize;
        let b = a.checked_add(usize::from(c.n)).ok_or(EINVAL)?;
        let locs = claim_locs.get(a..b).ok_or(EINVAL)?;
        let s = c.shape;
        space.claim(locs, s.span, c.seq, s.cap, s.raid, s.trims, s.pieces)?;
    }
    let mut mapped = 0u64;
    let mut stale = 0u64;
    for v in vols {
        mapped = mapped.saturating_add(v.map.stats().mapped);
        // A leaf copies share counts once: live blocks are counted per
        // leaf that points at them.
        v.map.lock().for_each_mapped(1, |e| {
            if let Entry::Disk { member, block } = e {
                if !space.add_live(member, block) {
                    if stale == 0 {
                        pr_warn!(
                            "volume {}: a block maps to member {} block {}, which no stripe holds\n",
                            v.id,
                            member,
                            block
                        );
                    }
                    stale = stale.saturating_add(1);
                }
            }
        });
    }
    if stale > 0 {
        pr_warn!("{} mapped blocks lie where no stripe holds them\n", stale);
    }
    space.finish_claims(max_seq);
    // No read has started yet: nothing waits for a read epoch.
    let freed = space.reclaim(max_seq, 0, 1);
    pr_info!(
        "rebuilt maps from {} stripes ({} blocks mapped, {} blocks free again, {} torn stripes ignored, {} bad header copies, {} stripes missing) in {} ms\n",
        stripes,
        mapped,
        freed,
        torn,
        bad,
        missing,
        t0.elapsed().as_millis()
    );
    Ok(Found {
        start: Start {
            space,
            // New stripes must not fall below a copy point: they would be shared
            // into the copy at the next assembly.
            next_seq: max_seq
                .checked_add(1)
                .ok_or(EINVAL)?
                .max(events.iter().map(|e| e.at).max().unwrap_or(0)),
            durable_seq: newest.map_or(0, |(s, _)| s),
            prev: newest.map(|(_, l)| l),
        },
    })
}

// A failed assertion is the test failing; the tables under test are built
// here, not read from a member.
#[allow(clippy::indexing_slicing, clippy::panic)]
#[kernel::prelude::kunit_tests(stria_rebuild)]
mod tests {
    use super::*;

    #[test]
    fn heap_sort_sorts() -> Result {
        let mut v = KVec::new();
        let mut x = 12345u64;
        for _ in 0..1000 {
            // A small LCG: a mix of runs, repeats and disorder.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v.push((x >> 54) as u32, GFP_KERNEL)?;
        }
        heap_sort(&mut v, |a| *a);
        assert!(v.windows(2).all(|w| w.first() <= w.last()));
        let mut one = [7u32];
        heap_sort(&mut one, |a| *a);
        assert_eq!(one, [7]);
        let mut none: [u32; 0] = [];
        heap_sort(&mut none, |a| *a);
        Ok(())
    }
}
