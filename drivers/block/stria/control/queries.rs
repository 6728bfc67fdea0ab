// SPDX-License-Identifier: GPL-2.0

//! Queries: an array's status, its volumes, and where two volumes differ.

use super::abi_error;
use super::disk_name;
use super::request;
use super::sectors;
use super::user_slice;
use super::Claim;
use super::Controller;
use crate::format::superblock::volume_flags;
use crate::map::diverge;
use crate::uapi;
use kernel::prelude::*;
use kernel::transmute::AsBytes;
use kernel::uaccess::UserSlice;

impl Controller {
    #[inline(never)]
    pub(super) fn status(&self, arg: usize) -> Result<isize> {
        let (req, mut writer) = request(arg, "status", uapi::Status::check)?;
        let index = req.index;
        let st = {
            let table = self.table.lock();
            match table.get(index as usize) {
                Some(Claim::Live(slot)) => slot.array.status(index, slot.openers()),
                _ => return Err(ENOENT),
            }
        };
        writer.write(&st)?;
        Ok(0)
    }

    #[inline(never)]
    pub(super) fn diff(&self, arg: usize) -> Result<isize> {
        let (req, mut writer) = request(arg, "diff", uapi::Diff::check)?;
        if req.how != 0 {
            // An answer, not a question.
            return Err(abi_error("diff", uapi::AbiError::Reserved));
        }
        if req.nr_blocks == 0 || req.nr_blocks > uapi::DIFF_MAX_BLOCKS {
            pr_err!("diff: 1 to {} blocks at a time\n", uapi::DIFF_MAX_BLOCKS);
            return Err(EINVAL);
        }
        let array = self.running(req.index)?;
        let vols = array.volume_list()?;
        let find = |id| vols.iter().find(|v| v.id == id).ok_or(ENOENT);
        let (a, b) = (find(req.id)?, find(req.other)?);
        let len = usize::try_from(req.nr_blocks.div_ceil(8)).map_err(|_| EINVAL)?;
        let mut bits = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        // A copy and its source: look only where either marked a change.
        let track = if req.flags & uapi::DIFF_MAPS != 0 {
            None
        } else {
            a.map.track(a.id, b.id).or_else(|| b.map.track(b.id, a.id))
        };
        let how = if track.is_some() {
            uapi::DIFF_BY_TRACK
        } else {
            uapi::DIFF_BY_MAPS
        };
        let r = match &track {
            Some(t) => a
                .map
                .diff_by(&b.map, t, req.start, req.nr_blocks, &mut bits),
            None => a.map.diff(&b.map, req.start, req.nr_blocks, &mut bits),
        };
        let changed = r.inspect_err(|_| {
            pr_err!(
                "diff: blocks {}+{} are not within volumes {} and {}\n",
                req.start,
                req.nr_blocks,
                req.id,
                req.other
            )
        })?;
        user_slice(req.bitmap, len)?.writer().write_slice(&bits)?;
        writer.write(&uapi::Diff {
            changed,
            how,
            ..req
        })?;
        Ok(0)
    }

    #[inline(never)]
    pub(super) fn volumes(&self, arg: usize) -> Result<isize> {
        let (mut reader, mut writer) =
            UserSlice::new(UserPtr::from_addr(arg), size_of::<uapi::Volumes>()).reader_writer();
        // Ten kilobytes: off the stack, so read in place rather than by
        // `read`, which returns the value.
        let mut vs = KBox::init(pin_init::zeroed::<uapi::Volumes>(), GFP_KERNEL)?;
        reader.read_slice(vs.as_bytes_mut())?;
        vs.check().map_err(|e| abi_error("volumes", e))?;
        let (index, flags) = (vs.index, vs.flags);
        let sharing = flags & uapi::VOLUMES_NO_SHARING == 0;
        // The answer: the entries filled below, the rest zero.
        vs.flags = 0;
        vs.volumes.fill(uapi::VolumeInfo::default());
        let table = self.table.lock();
        let Some(Claim::Live(slot)) = table.get(index as usize) else {
            return Err(ENOENT);
        };
        let vt = slot.array.table()?;
        let mut n = 0usize;
        for e in vt.volumes.iter() {
            let d = slot.find(e.id).and_then(|i| slot.disks.get(i));
            let map = d.map(|d| d.dev.volume().map.stats()).unwrap_or_default();
            if e.flags & volume_flags::DELETING != 0 {
                // Deleted; kept only for what its copies share.
                continue;
            }
            let copy = e.flags & volume_flags::COPY != 0;
            // Exact sharing: what no other volume of its copy tree points
            // at is its own.
            let shared = match d {
                Some(_) if sharing => map.mapped.saturating_sub(slot.array.unique_blocks(e.id)?),
                _ => 0,
            };
            let tracked = d.and_then(|d| d.dev.volume().map.track(e.id, e.parent_id));
            let ts = tracked.map(|t| t.stats());
            let track = match ts.and_then(|t| t.form) {
                _ if !copy => 0,
                Some(diverge::Form::Bitmap) => uapi::TRACK_BITMAP,
                Some(diverge::Form::Multi) => uapi::TRACK_MULTI,
                Some(diverge::Form::Partial) => uapi::TRACK_PARTIAL,
                None => uapi::TRACK_NONE,
            };
            let mut info = uapi::VolumeInfo {
                id: e.id,
                open_count: d.map_or(0, |d| d.dev.openers()),
                size_sectors: sectors(e.size_blocks)?,
                map_blocks: map.mapped,
                map_bytes: map
                    .leaf_bytes
                    .saturating_add(map.delta_bytes)
                    .saturating_add(map.dir_bytes),
                flags: if copy { uapi::VINFO_COPY } else { 0 },
                parent_id: e.parent_id,
                copy_seq: e.copy_generation,
                shared_blocks: shared,
                shared_map_bytes: map.shared_bytes,
                copy_form: if copy { e.copy_meta as u32 } else { 0 },
                deltas: u32::try_from(map.deltas).unwrap_or(u32::MAX),
                track,
                track_bytes: ts.map_or(0, |t| t.bytes),
                track_blocks: ts.map_or(0, |t| t.marked),
                ..uapi::VolumeInfo::default()
            };
            for (dst, src) in info.name.iter_mut().zip(e.name.iter()) {
                *dst = *src;
            }
            if d.is_some() {
                disk_name(index as usize, e.id, &mut info.disk)?;
            }
            if let Some(slot) = vs.volumes.get_mut(n) {
                *slot = info;
            }
            n = n.saturating_add(1);
        }
        drop(table);
        vs.nr_volumes = n as u32;
        writer.write(&*vs)?;
        Ok(0)
    }
}
