// SPDX-License-Identifier: GPL-2.0

//! Rebuilding every volume's map from the members alone.
//!
//! 1. Scan: each member's data area is read for stripe headers. A valid
//!    header of this array that names the block it was read from starts a
//!    strip; the scan jumps over the strip's data and probes the next
//!    block, and reads the area in large chunks only where no strip
//!    continues (free space, or the tail of a strip closed short).
//! 2. Judge: header copies are grouped by sequence number. The newest
//!    `durable_seq` any header claims says which stripes a flush covered:
//!    those are trusted even if some header copies are damaged (any one
//!    copy describes the whole stripe). A stripe above it may have been
//!    torn by a power cut: it is kept only if every strip's header is
//!    there and every strip's data matches its checksum; otherwise its
//!    headers are erased so it can never be mistaken for valid later.
//! 3. Replay: trusted stripes in sequence order, their pieces in order,
//!    each setting the map of its volume; the newest write of a block wins.

use crate::alloc::Space;
use crate::format::error::FormatError;
use crate::format::geometry;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::header;
use crate::format::header::StripeHeader;
use crate::format::header::StripeLocation;
use crate::format::uuid::Uuid;
use crate::map::Entry;
use crate::members::Member;
use crate::writer::Start;
use crate::writer::Volume;
use kernel::prelude::*;
use kernel::time::Instant;
use kernel::time::Monotonic;

/// Bytes per block.
const BLOCK: u64 = BLOCK_SIZE as u64;
/// Blocks read at once where no strip continues.
const CHUNK_BLOCKS: u64 = 256;

/// One header copy found by the scan.
#[derive(Clone, Copy, Debug)]
struct Copy {
    seq: u64,
    lba: u64,
    durable_seq: u64,
    member: u8,
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

/// Reads `blocks` blocks of member `m` at `lba` into `buf`.
fn read(member: &Member, m: usize, lba: u64, buf: &mut KVec<u8>, blocks: u64) -> Result {
    let len = usize::try_from(blocks * BLOCK).map_err(|_| EINVAL)?;
    buf.resize(len, 0, GFP_KERNEL)?;
    member
        .bdev
        .read_at(lba * BLOCK, buf)
        .map_err(|e| io_err(m, lba, e))
}

/// Scans member `m` for header copies.
fn scan_member(
    member: &Member,
    m: usize,
    uuid: &Uuid,
    hdr: &mut StripeHeader,
    copies: &mut KVVec<Copy>,
    bad: &mut u64,
) -> Result<u64> {
    let start = member.data_start / BLOCK;
    let end = start + member.data_bytes / BLOCK;
    let mut buf = KVec::new();
    let mut pos = start;
    let mut frontier = start;
    // After a strip, the next one usually follows at once: probe one block.
    let mut probe = false;
    let m8 = u8::try_from(m).map_err(|_| EINVAL)?;
    while pos < end {
        let want = if probe {
            1
        } else {
            CHUNK_BLOCKS.min(end - pos)
        };
        read(member, m, pos, &mut buf, want)?;
        let mut j = 0u64;
        let mut jumped = false;
        while j < want {
            let off = (j * BLOCK) as usize;
            let block = buf.get(off..off + BLOCK_SIZE).ok_or(EINVAL)?;
            if !header::looks_like_header(block) {
                j += 1;
                continue;
            }
            let lba = pos + j;
            let verdict = hdr
                .decode_into(block)
                .and_then(|()| hdr.check_array(uuid))
                .and_then(|()| hdr.check_location(m8, lba).map(|_| ()));
            match verdict {
                Ok(()) => {
                    copies.push(
                        Copy {
                            seq: hdr.seq,
                            lba,
                            durable_seq: hdr.durable_seq,
                            member: m8,
                        },
                        GFP_KERNEL,
                    )?;
                    let next = lba.saturating_add(geometry::strip_span(hdr));
                    frontier = frontier.max(next.min(end));
                    pos = next;
                    jumped = true;
                    break;
                }
                Err(FormatError::WrongArray) => {
                    // Left by an earlier array on this disk: not ours.
                    j += 1;
                }
                Err(e) => {
                    pr_warn!(
                        "member {} block {}: stripe header ignored: {}\n",
                        m,
                        lba,
                        e.as_str()
                    );
                    *bad += 1;
                    frontier = frontier.max(lba + 1);
                    j += 1;
                }
            }
        }
        if jumped {
            probe = true;
        } else {
            pos += want;
            probe = false;
        }
    }
    Ok(frontier)
}

/// Reads strip `i` of `h` (header block included) and checks its data.
fn strip_ok(members: &[Member], h: &StripeHeader, i: usize, buf: &mut KVec<u8>) -> Result<bool> {
    let s = h.strips().get(i).ok_or(EINVAL)?;
    let m = usize::from(s.member);
    let member = members.get(m).ok_or(EINVAL)?;
    read(member, m, s.lba, buf, geometry::strip_span(h))?;
    let data = buf.get(BLOCK_SIZE..).ok_or(EINVAL)?;
    Ok(h.verify_strip_data(i, data).is_ok())
}

/// Overwrites the header copies of a torn stripe with zeros.
fn erase(members: &[Member], copies: &[Copy]) -> Result {
    let zero = KVec::from_elem(0u8, BLOCK_SIZE, GFP_KERNEL)?;
    for c in copies {
        if let Some(m) = members.get(usize::from(c.member)) {
            m.bdev.write_at(c.lba * BLOCK, &zero)?;
        }
    }
    Ok(())
}

/// Replays the pieces of `h` into the maps of `vols`; returns the pieces
/// that named no known volume or lay beyond one's end.
fn replay(h: &StripeHeader, vols: &[&Volume]) -> Result<u64> {
    let mut skipped = 0u64;
    for (i, p) in h.pieces_with_strip() {
        let Some(vol) = vols.iter().find(|v| v.id == p.volume) else {
            skipped += 1;
            continue;
        };
        let n = u64::from(p.host_len);
        if p.host_lba
            .checked_add(n)
            .is_none_or(|e| e > vol.map.size_blocks())
        {
            skipped += 1;
            continue;
        }
        let Some(run) = geometry::piece_run(h, i, p).map_err(|_| EINVAL)? else {
            // A trim record: what it covers reads as zeros again.
            vol.map.lock().unmap(p.host_lba, n);
            continue;
        };
        vol.map.prepare(p.host_lba, n)?;
        let mut m = vol.map.lock();
        for b in 0..n {
            m.set(
                p.host_lba + b,
                Entry::Disk {
                    member: run.member,
                    block: run.lba + b,
                },
            )?;
        }
    }
    Ok(skipped)
}

/// Rebuilds the maps of `vols` from the members of array `uuid`.
pub(crate) fn rebuild(members: &[Member], uuid: &Uuid, vols: &[&Volume]) -> Result<Found> {
    let t0 = Instant::<Monotonic>::now();
    let mut areas = KVec::with_capacity(members.len(), GFP_KERNEL)?;
    for m in members {
        let s = m.data_start / BLOCK;
        areas.push((s, s + m.data_bytes / BLOCK), GFP_KERNEL)?;
    }
    let mut space = Space::new(&areas)?;
    let mut hdr = KBox::new(StripeHeader::EMPTY, GFP_KERNEL)?;
    let mut copies: KVVec<Copy> = KVVec::new();
    let mut bad = 0u64;
    for (m, member) in members.iter().enumerate() {
        let frontier = scan_member(member, m, uuid, &mut hdr, &mut copies, &mut bad)?;
        space.advance(m, frontier);
    }
    copies.sort_unstable_by_key(|c| (c.seq, c.member, c.lba));
    // A clean stop records the end of the log in the superblocks.
    let durable = copies
        .iter()
        .map(|c| c.durable_seq)
        .max()
        .unwrap_or(0)
        .max(crate::members::log_seq(members));
    let max_seq = copies.iter().map(|c| c.seq).max().unwrap_or(0);

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
        let group = copies.get(i..i + n).ok_or(EINVAL)?;
        i += n;
        let Some(first) = group.first() else { continue };
        let member = members.get(usize::from(first.member)).ok_or(EINVAL)?;
        read(member, usize::from(first.member), first.lba, &mut buf, 1)?;
        hdr.decode_into(&buf).map_err(|_| EIO)?;
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
            torn += 1;
            continue;
        }
        if n != want {
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
        if let Some(p) = hdr.prev {
            links.push((seq, p), GFP_KERNEL)?;
        }
        skipped += replay(&hdr, vols)?;
        stripes += 1;
        if let Ok(loc) = hdr.location(0) {
            newest = Some((seq, loc));
        }
    }
    places.sort_unstable();
    let mut missing = 0u64;
    for (seq, p) in links.iter() {
        if places.binary_search(&(p.member, p.lba)).is_err() {
            pr_warn!(
                "stripe {}: the stripe written before it (member {} block {}) is gone\n",
                seq,
                p.member,
                p.lba
            );
            missing += 1;
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
    let mut mapped = 0u64;
    for v in vols {
        mapped += v.map.stats().mapped;
    }
    pr_info!(
        "rebuilt maps from {} stripes ({} blocks mapped, {} torn stripes ignored, {} bad header copies, {} stripes missing) in {} ms\n",
        stripes,
        mapped,
        torn,
        bad,
        missing,
        t0.elapsed().as_millis()
    );
    Ok(Found {
        start: Start {
            space,
            next_seq: max_seq + 1,
            durable_seq: newest.map_or(0, |(s, _)| s),
            prev: newest.map(|(_, l)| l),
        },
    })
}
