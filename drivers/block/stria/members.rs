// SPDX-License-Identifier: GPL-2.0

//! Members at assembly: claimed, their superblocks read and checked, and
//! put in the order the superblocks record.

// Sizes and offsets here come from members or from user space.
#![deny(clippy::arithmetic_side_effects)]

use crate::blk::bdev::Bdev;
use crate::format::error::FormatError;
use crate::format::geometry;
use crate::format::geometry::block_offset;
use crate::format::header::DataArea;
use crate::format::superblock;
use crate::format::superblock::Locations;
use crate::format::superblock::StripeGroup;
use crate::format::superblock::Superblock;
use crate::format::superblock::VolumeEntry;
use crate::format::superblock::SB_BYTES;
use crate::format::uuid::Uuid;
use kernel::prelude::*;
use kernel::str::CStr;

/// A member in its place in the array.
pub(crate) struct Member {
    /// The claimed device.
    pub(crate) bdev: Bdev,
    /// Its superblock as last read or written.
    sb: KBox<Superblock>,
    /// Where the superblock copies lie.
    sb_loc: Locations,
    /// First byte of the data area.
    pub(crate) data_start: u64,
    /// Bytes in the data area.
    pub(crate) data_bytes: u64,
}

impl Member {
    /// The data area in blocks.
    pub(crate) fn area(&self) -> DataArea {
        let start = self.data_start >> geometry::BLOCK_SHIFT;
        DataArea {
            start,
            // Cannot saturate: the superblock checks keep the area on a
            // member of at most `MAX_MEMBER_BLOCKS` blocks.
            end: start.saturating_add(self.data_bytes >> geometry::BLOCK_SHIFT),
        }
    }
}

/// The data area of member `m` of `members`, as header checks ask for it.
pub(crate) fn area_of(members: &[Member], m: u8) -> Option<DataArea> {
    members.get(usize::from(m)).map(Member::area)
}

fn path_str(path: &CStr) -> &str {
    path.to_str().unwrap_or("?")
}

fn bad(path: &CStr, what: &str, e: FormatError) -> Error {
    pr_err!("{}: {}: {}\n", path_str(path), what, e.as_str());
    EINVAL
}

/// Reads one superblock copy at `block` and decodes it into `sb`; the
/// outer error is an I/O failure, the inner one what decoding found.
fn read_copy(
    bdev: &Bdev,
    block: u64,
    buf: &mut KVec<u8>,
    sb: &mut Superblock,
) -> Result<core::result::Result<(), FormatError>> {
    let offset = block_offset(block).ok_or(EINVAL)?;
    bdev.read_at(offset, buf)?;
    Ok(sb.decode_into(buf))
}

/// Reads both superblock copies of `bdev` and leaves the newest valid one
/// in `out`.
fn read_superblock(path: &CStr, bdev: &Bdev, out: &mut Superblock) -> Result<Locations> {
    let blocks = bdev.nr_sectors() / geometry::SECTORS_PER_BLOCK;
    let loc = superblock::locations(blocks).map_err(|e| bad(path, "too small for stria", e))?;
    let mut buf = KVec::from_elem(0u8, SB_BYTES, GFP_KERNEL)?;
    // Superblocks are kilobytes: keep them off the kernel stack.
    let mut primary = KBox::new(Superblock::EMPTY, GFP_KERNEL)?;
    let mut backup = KBox::new(Superblock::EMPTY, GFP_KERNEL)?;
    let io = |e: Error| {
        pr_err!(
            "{}: cannot read its superblock: error {}\n",
            path_str(path),
            e.to_errno()
        );
        e
    };
    let p = read_copy(bdev, loc.primary_block, &mut buf, &mut primary).map_err(io)?;
    let b = read_copy(bdev, loc.backup_block, &mut buf, &mut backup).map_err(io)?;
    let p = p.map(|()| &*primary);
    let b = b.map(|()| &*backup);
    let (_, newest) =
        superblock::pick_newest(p, b).map_err(|e| bad(path, "no valid stria superblock", e))?;
    *out = *newest;
    if out.needs_read_only() {
        pr_err!(
            "{}: unknown read-only-compatible features {:#x}\n",
            path_str(path),
            out.unknown_ro_compat()
        );
        return Err(EINVAL);
    }
    // The device may have shrunk since `create`, or the superblock may lie:
    // the data area must end before this device's backup copy.
    if out.this_member().size_blocks > blocks || out.data_end > loc.backup_block {
        pr_err!(
            "{}: recorded size {} blocks and data end {} do not fit the device's {} blocks\n",
            path_str(path),
            out.this_member().size_blocks,
            out.data_end,
            blocks
        );
        return Err(EINVAL);
    }
    Ok(loc)
}

/// Who an array is.
pub(crate) struct Identity {
    /// Its UUID.
    pub(crate) uuid: Uuid,
    /// Its name, NUL padded.
    pub(crate) name: [u8; superblock::ARRAY_NAME_LEN],
    /// Its stripe groups.
    pub(crate) groups: KVec<StripeGroup>,
    /// Its volumes.
    pub(crate) volumes: KVec<VolumeEntry>,
    /// Id the next volume gets.
    pub(crate) next_volume_id: u32,
    /// Superblock generation written at assembly.
    pub(crate) generation: u64,
}

/// Claims `paths`, checks that they are exactly the members of one array,
/// and returns them in member order with the array's identity.
pub(crate) fn assemble(paths: &[&CStr]) -> Result<(KVec<Member>, Identity)> {
    let n = paths.len();
    let mut slots: KVec<Option<Member>> = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        slots.push(None, GFP_KERNEL)?;
    }
    let mut array: Option<Uuid> = None;
    for path in paths {
        let mut sb = KBox::new(Superblock::EMPTY, GFP_KERNEL)?;
        let bdev = Bdev::open_exclusive(path).inspect_err(|e| {
            pr_err!(
                "cannot open member {}: error {}\n",
                path_str(path),
                e.to_errno()
            );
        })?;
        let lbs = bdev.logical_block_size();
        if u64::from(lbs) > geometry::BLOCK_SIZE as u64 {
            pr_err!(
                "{}: {}-byte blocks, more than {}\n",
                path_str(path),
                lbs,
                geometry::BLOCK_SIZE
            );
            return Err(EINVAL);
        }
        let sb_loc = read_superblock(path, &bdev, &mut sb)?;
        if usize::from(sb.member_count) != n {
            pr_err!(
                "{}: its array has {} members, {} given\n",
                path_str(path),
                sb.member_count,
                n
            );
            return Err(EINVAL);
        }
        match array {
            None => array = Some(sb.array_uuid),
            Some(u) if u != sb.array_uuid => {
                pr_err!("{}: belongs to another array\n", path_str(path));
                return Err(EINVAL);
            }
            Some(_) => {}
        }
        let slot = slots.get_mut(usize::from(sb.member_index)).ok_or(EINVAL)?;
        if slot.is_some() {
            pr_err!(
                "{}: member {} given twice\n",
                path_str(path),
                sb.member_index
            );
            return Err(EINVAL);
        }
        let data_start = block_offset(sb.data_start).ok_or(EINVAL)?;
        let data_bytes = sb
            .data_end
            .checked_sub(sb.data_start)
            .and_then(block_offset)
            .ok_or(EINVAL)?;
        *slot = Some(Member {
            bdev,
            sb,
            sb_loc,
            data_start,
            data_bytes,
        });
    }
    let mut members = KVec::with_capacity(n, GFP_KERNEL)?;
    // Every slot is filled: n members, n distinct indices below n.
    for m in slots.into_iter().flatten() {
        members.push(m, GFP_KERNEL)?;
    }
    if members.len() != n {
        return Err(EINVAL);
    }
    // Every member's superblock was checked to belong to the same array.
    // A change of the volume table cut short by a power cut leaves some
    // members with the new table and some with the old: the newest
    // generation is the last table written, which the others catch up with
    // below. Ties go to the lowest index, so every assembly takes the same.
    let newest = members
        .iter()
        .enumerate()
        .max_by_key(|(i, m)| (m.sb.generation, core::cmp::Reverse(*i)))
        .map(|(_, m)| m)
        .ok_or(EINVAL)?;
    if members
        .iter()
        .any(|m| m.sb.generation != newest.sb.generation)
    {
        pr_warn!(
            "members' superblocks disagree; using generation {} (member {})\n",
            newest.sb.generation,
            newest.sb.member_index
        );
    }
    let mut groups = KVec::new();
    for g in newest.sb.groups() {
        groups.push(*g, GFP_KERNEL)?;
    }
    let mut volumes = KVec::new();
    for v in newest.sb.volumes.iter().flatten() {
        volumes.push(*v, GFP_KERNEL)?;
    }
    let next_volume_id = newest.sb.next_volume_id;
    let mut src = KBox::new(Superblock::EMPTY, GFP_KERNEL)?;
    *src = *newest.sb;
    for m in members.iter_mut() {
        adopt(&mut m.sb, &src);
    }
    record_assembly(&mut members)?;
    let identity = Identity {
        uuid: array.ok_or(EINVAL)?,
        name: src.array_name,
        groups,
        volumes,
        next_volume_id,
        generation: members.first().map_or(0, |m| m.sb.generation),
    };
    Ok((members, identity))
}

/// Takes into `sb` what every member's superblock records the same for the
/// whole array, from `newest`; what is the member's own stays.
fn adopt(sb: &mut Superblock, newest: &Superblock) {
    sb.compat = newest.compat;
    sb.ro_compat = newest.ro_compat;
    sb.incompat = newest.incompat;
    sb.array_name = newest.array_name;
    sb.next_volume_id = newest.next_volume_id;
    sb.log_head = newest.log_head;
    sb.log_seq = newest.log_seq;
    sb.members = newest.members;
    sb.group_count = newest.group_count;
    sb.groups = newest.groups;
    sb.volumes = newest.volumes;
}

/// Writes every member's superblock with a new generation, one above the
/// highest found, and the time: the members now agree on being one array
/// assembled together.
///
/// Backup copies go first and are flushed before any primary is written,
/// so a power cut at any point leaves every member at least one valid copy,
/// old or new, and `pick_newest` takes whichever is newer.
fn record_assembly(members: &mut KVec<Member>) -> Result {
    let generation = members
        .iter()
        .map(|m| m.sb.generation)
        .max()
        .and_then(|g| g.checked_add(1))
        .ok_or(EINVAL)?;
    let now = crate::blk::wall_clock_seconds();
    for m in members.iter_mut() {
        m.sb.generation = generation;
        m.sb.mtime = now;
    }
    write_superblocks(members, |_| {})
}

/// The newest log position any member's superblock records.
pub(crate) fn log_seq(members: &[Member]) -> u64 {
    members.iter().map(|m| m.sb.log_seq).max().unwrap_or(0)
}

/// Writes every member's superblock, changed by `update` on the way
/// (the in-memory copy stays as it is): backups first, flushed, then
/// primaries, flushed.
pub(crate) fn write_superblocks(members: &[Member], update: impl Fn(&mut Superblock)) -> Result {
    let mut buf = KVec::from_elem(0u8, SB_BYTES, GFP_KERNEL)?;
    let mut sb = KBox::new(Superblock::EMPTY, GFP_KERNEL)?;
    for backup in [true, false] {
        for m in members.iter() {
            *sb = *m.sb;
            update(&mut sb);
            sb.encode(&mut buf)
                .map_err(|e| bad(c"member", "cannot encode its superblock", e))?;
            let block = if backup {
                m.sb_loc.backup_block
            } else {
                m.sb_loc.primary_block
            };
            let at = block_offset(block).ok_or(EINVAL)?;
            m.bdev.write_at(at, &buf).inspect_err(|e| {
                pr_err!("cannot write a superblock: error {}\n", e.to_errno());
            })?;
        }
        for m in members.iter() {
            m.bdev.flush().inspect_err(|e| {
                pr_err!("cannot flush a member: error {}\n", e.to_errno());
            })?;
        }
    }
    Ok(())
}
