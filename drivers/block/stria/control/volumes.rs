// SPDX-License-Identifier: GPL-2.0

//! Volume operations: create, delete, resize, rename and instant copies,
//! each checked against the volume table before it changes.

use super::make_disk;
use super::request;
use super::sectors;
use super::Assembled;
use super::Controller;
use crate::array::Array;
use crate::array::Table;
use crate::format::geometry;
use crate::format::superblock::volume_flags;
use crate::format::superblock::CopyMeta;
use crate::format::superblock::VolumeEntry;
use crate::format::superblock::MAX_VOLUMES;
use crate::format::superblock::VOLUME_NAME_LEN;
use crate::map::diverge;
use crate::map::diverge::Divergence;
use crate::uapi;
use kernel::prelude::*;

/// Whether a volume in service is named `name`: a deleted source kept for
/// its copies gives its name up, as any deleted volume does.
pub(super) fn name_taken(table: &Table, name: &[u8; VOLUME_NAME_LEN]) -> bool {
    table
        .volumes
        .iter()
        .any(|v| v.name == *name && v.flags & volume_flags::DELETING == 0)
}

/// Checks a volume name from user space: 1 to 31 of `[A-Za-z0-9._-]`, NUL
/// padded.
pub(super) fn volume_name(raw: &[u8; uapi::VOLUME_NAME_MAX]) -> Result<[u8; VOLUME_NAME_LEN]> {
    let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let (name, pad) = raw.split_at(len);
    let ok_char = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if len == 0
        || len >= VOLUME_NAME_LEN
        || !name.iter().all(ok_char)
        || pad.iter().any(|&b| b != 0)
    {
        pr_err!("volume: a name is 1 to 31 of A-Z a-z 0-9 . _ -\n");
        return Err(EINVAL);
    }
    let mut out = [0u8; VOLUME_NAME_LEN];
    for (d, s) in out.iter_mut().zip(name) {
        *d = *s;
    }
    Ok(out)
}

/// Largest volume, in blocks: the bound the superblocks' checks apply.
const MAX_VOLUME_BLOCKS: u64 = crate::format::superblock::MAX_VOLUME_BLOCKS;

impl Controller {
    #[inline(never)]
    pub(super) fn volume(&self, arg: usize) -> Result<isize> {
        let (req, mut writer) = request(arg, "volume", uapi::Volume::check)?;
        let mut slot = self.take(req.index)?;
        let r = Self::volume_op(&mut slot, req.index as usize, &req);
        self.put(req.index, slot);
        let id = r?;
        writer.write(&uapi::Volume { id, ..req })?;
        Ok(0)
    }

    pub(super) fn volume_op(slot: &mut Assembled, index: usize, req: &uapi::Volume) -> Result<u32> {
        let blocks = || -> Result<u64> {
            let spb = geometry::SECTORS_PER_BLOCK;
            let blocks = req.size_sectors.checked_div(spb).unwrap_or(0);
            if blocks == 0
                || req.size_sectors.checked_rem(spb) != Some(0)
                || blocks > MAX_VOLUME_BLOCKS
            {
                pr_err!(
                    "volume: size must be a multiple of 4 KiB, from 4 KiB to {} TiB\n",
                    MAX_VOLUME_BLOCKS >> 28
                );
                return Err(EINVAL);
            }
            Ok(blocks)
        };
        if req.op != uapi::VOLUME_COPY && (req.form != 0 || req.track != 0) {
            pr_err!("volume: a metadata form is only for copies\n");
            return Err(EINVAL);
        }
        let table = slot.array.table()?;
        let find = || -> Result<VolumeEntry> {
            let name = if req.id == 0 {
                Some(volume_name(&req.name)?)
            } else {
                None
            };
            table
                .volumes
                .iter()
                .filter(|v| v.flags & volume_flags::DELETING == 0)
                .find(|v| match name {
                    Some(n) => v.name == n,
                    None => v.id == req.id,
                })
                .copied()
                .ok_or_else(|| {
                    pr_err!("stria{}: no such volume\n", index);
                    ENOENT
                })
        };
        match req.op {
            uapi::VOLUME_CREATE => {
                let name = volume_name(&req.name)?;
                let size_blocks = blocks()?;
                if req.id != 0 {
                    return Err(EINVAL);
                }
                if name_taken(&table, &name) {
                    pr_err!("stria{}: a volume of that name exists\n", index);
                    return Err(EEXIST);
                }
                if slot.array.nr_groups() == 0 {
                    return Err(EINVAL);
                }
                let e = VolumeEntry::thin(
                    table.next_id,
                    size_blocks,
                    name,
                    crate::blk::wall_clock_seconds(),
                );
                slot.disks.reserve(1, GFP_KERNEL)?;
                let vol = slot.array.add_volume(e)?;
                match make_disk(index, &slot.array, vol) {
                    Ok(d) => slot.disks.push(d, GFP_KERNEL)?,
                    Err(err) => {
                        let _ = slot.array.remove_volume(e.id);
                        return Err(err);
                    }
                }
                Ok(e.id)
            }
            uapi::VOLUME_RESIZE => {
                let e = find()?;
                let size_blocks = blocks()?;
                let i = slot.find(e.id).ok_or(ENOENT)?;
                let d = slot.disks.get(i).ok_or(ENOENT)?;
                // No write may land past the new end between the trim of
                // what is cut off and the map's resize; as for a copy, no
                // I/O from the allocations while the queue is frozen.
                let _frozen = d.disk.freeze();
                crate::blk::noio(|| {
                    Array::resize_volume(&slot.array, d.dev.volume(), size_blocks)
                })?;
                d.disk.set_capacity(sectors(size_blocks)?);
                Ok(e.id)
            }
            uapi::VOLUME_COPY => Self::copy(slot, index, req, &table),
            uapi::VOLUME_DELETE => {
                let e = find()?;
                if let Some(i) = slot.find(e.id) {
                    let d = slot.disks.get(i).ok_or(ENOENT)?;
                    d.dev.begin_close().inspect_err(|_| {
                        pr_err!(
                            "stria{}: cannot delete volume {}: it is open\n",
                            index,
                            e.id
                        );
                    })?;
                    // Deleting the disk drains its I/O.
                    slot.disks.remove(i).map_err(|_| ENOENT)?;
                }
                slot.array.remove_volume(e.id)?;
                Ok(e.id)
            }
            _ => {
                pr_err!("volume: unknown operation {}\n", req.op);
                Err(EINVAL)
            }
        }
    }

    /// Makes an instant copy of volume `req.id` named `req.name`.
    pub(super) fn copy(
        slot: &mut Assembled,
        index: usize,
        req: &uapi::Volume,
        table: &Table,
    ) -> Result<u32> {
        let name = volume_name(&req.name)?;
        if req.id == 0 || req.size_sectors != 0 {
            pr_err!("copy: name the source by id, and give no size\n");
            return Err(EINVAL);
        }
        let src = table
            .volumes
            .iter()
            .find(|v| v.id == req.id && v.flags & volume_flags::DELETING == 0)
            .copied()
            .ok_or_else(|| {
                pr_err!("stria{}: copy: no volume {}\n", index, req.id);
                ENOENT
            })?;
        if name_taken(table, &name) {
            pr_err!("stria{}: a volume of that name exists\n", index);
            return Err(EEXIST);
        }
        if table.volumes.len() >= MAX_VOLUMES {
            pr_err!("stria{}: the volume table is full\n", index);
            return Err(ENOSPC);
        }
        let family = if src.origin_id != 0 {
            src.origin_id
        } else {
            src.id
        };
        let i = slot.find(src.id).ok_or(ENOENT)?;
        let d = slot.disks.get(i).ok_or(ENOENT)?;
        let copy_meta = match req.form {
            uapi::COPY_FORM_AUTO => CopyMeta::auto(d.dev.volume().map.stats().leaf_bytes),
            uapi::COPY_FORM_FULL => CopyMeta::FullPointerTable,
            uapi::COPY_FORM_CHANGED => CopyMeta::ChangedBlocks,
            f => {
                pr_err!("copy: unknown metadata form {}\n", f);
                return Err(EINVAL);
            }
        };
        let st = d.dev.volume().map.stats();
        let areas = (st.leaf_bytes / (crate::map::LEAF_ENTRIES * 8)).saturating_add(st.deltas);
        let blocks = src.size_blocks;
        let track = match req.track {
            uapi::TRACK_AUTO => Some(diverge::Form::auto(blocks, areas)),
            uapi::TRACK_NONE => None,
            uapi::TRACK_BITMAP => Some(diverge::Form::Bitmap),
            uapi::TRACK_MULTI => Some(diverge::Form::Multi),
            uapi::TRACK_PARTIAL => Some(diverge::Form::Partial),
            f => {
                pr_err!("copy: unknown divergence map form {}\n", f);
                return Err(EINVAL);
            }
        };
        let limit = match track {
            Some(diverge::Form::Bitmap) => diverge::BITMAP_MAX_BLOCKS,
            Some(diverge::Form::Multi) => diverge::MULTI_MAX_BLOCKS,
            _ => u64::MAX,
        };
        if blocks > limit {
            pr_err!(
                "copy: that divergence map form takes volumes up to {} GiB\n",
                limit >> 18
            );
            return Err(EINVAL);
        }
        let e = VolumeEntry {
            id: table.next_id,
            flags: volume_flags::COPY,
            copy_meta,
            divergence: crate::array::divergence_meta(track),
            parent_id: src.id,
            origin_id: family,
            ctime: crate::blk::wall_clock_seconds(),
            name,
            ..src
        };
        slot.disks.reserve(1, GFP_KERNEL)?;
        let i = slot.find(src.id).ok_or(ENOENT)?;
        let d = slot.disks.get(i).ok_or(ENOENT)?;
        // Made before the source is frozen: a bit map may take a while.
        let track = match track {
            Some(f) => {
                // Copies taken together read one record of the source's
                // changes.
                let shared = d.dev.volume().map.shareable(src.id, blocks, f);
                Some(Divergence::new(e.id, src.id, blocks, f, shared)?)
            }
            None => None,
        };
        let vol = {
            // Requests in flight finish before the copy point, new ones
            // wait until after it.
            // Reclaim must not write to the frozen source: no I/O from
            // the allocations meanwhile.
            let _frozen = d.disk.freeze();
            crate::blk::noio(|| Array::copy_volume(&slot.array, d.dev.volume(), e, track))?
        };
        match make_disk(index, &slot.array, vol) {
            Ok(d) => slot.disks.push(d, GFP_KERNEL)?,
            Err(err) => {
                // As if it had never been made.
                pr_err!("stria{}: no device for copy {}: removed\n", index, e.id);
                let _ = slot.array.remove_volume(e.id);
                return Err(err);
            }
        }
        Ok(e.id)
    }
}
