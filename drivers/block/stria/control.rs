// SPDX-License-Identifier: GPL-2.0

//! The control device's ioctls: ASSEMBLE, STOP, STATUS, VOLUME and VOLUMES.

// Sizes and offsets here come from members or from user space.
#![deny(clippy::arithmetic_side_effects)]

use crate::alloc::Pick;
use crate::array::Array;
use crate::array::Table;
use crate::array::BLOCK_BYTES;
use crate::array::MAX_REQUEST_SECTORS;
use crate::blk::disk::Disk;
use crate::blk::disk::DiskParams;
use crate::blk::misc::capable_sys_admin;
use crate::blk::misc::Control;
use crate::format::geometry;
use crate::format::superblock::volume_flags;
use crate::format::superblock::CopyMeta;
use crate::format::superblock::VolumeEntry;
use crate::format::superblock::MAX_VOLUMES;
use crate::format::superblock::VOLUME_NAME_LEN;
use crate::map::diverge;
use crate::map::diverge::Divergence;
use crate::uapi;
use crate::volume::VolumeDev;
use crate::writer::Volume;
use core::pin::Pin;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;
use kernel::sync::Mutex;
use kernel::transmute::AsBytes;
use kernel::transmute::FromBytes;
use kernel::uaccess::UserSlice;
use kernel::uaccess::UserSliceWriter;

/// Largest discard or write-zeroes request (1 GiB): the block layer splits
/// larger ones, and each becomes one or a few trim records.
const MAX_DISCARD_SECTORS: u32 = 1 << 21;

/// A volume's block device.
struct VolDisk {
    id: u32,
    // Dropped first: deleting the disk drains its I/O.
    disk: Option<Disk<VolumeDev>>,
    dev: Arc<VolumeDev>,
}

impl Drop for VolDisk {
    fn drop(&mut self) {
        // Deleting the disk ends its requests: none of them waits any more.
        if self.disk.take().is_some() {
            self.dev.array().disk_gone();
        }
    }
}

/// An assembled array and the devices of its volumes.
struct Slot {
    disks: KVec<VolDisk>,
    array: Arc<Array>,
}

impl Slot {
    /// How many times the array's volumes are open.
    fn openers(&self) -> u32 {
        self.disks.iter().map(|d| d.dev.openers()).sum()
    }

    /// Refuses further opens of every volume, unless one is open (`EBUSY`).
    fn begin_stop(&self) -> Result {
        for (i, d) in self.disks.iter().enumerate() {
            if let Err(e) = d.dev.begin_close() {
                for d in self.disks.iter().take(i) {
                    d.dev.cancel_close();
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn find(&self, id: u32) -> Option<usize> {
        self.disks.iter().position(|d| d.id == id)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Deleting the disks drains their I/O; what the writer still
        // buffers then goes to the members before they are closed.
        self.disks.clear();
        Array::shut_down(&self.array);
    }
}

/// The name of array `index`'s device for volume `id`.
fn disk_name(index: usize, id: u32, out: &mut [u8; 32]) -> Result {
    out.fill(0);
    let mut w = kernel::str::NullTerminatedFormatter::new(out).ok_or(EINVAL)?;
    if id == 1 {
        core::fmt::write(&mut w, fmt!("stria{}", index))
    } else {
        core::fmt::write(&mut w, fmt!("stria{}v{}", index, id))
    }
    .map_err(|_| EINVAL)
}

/// 512-byte sectors of `blocks` blocks.
fn sectors(blocks: u64) -> Result<u64> {
    geometry::block_to_sector(blocks).map_err(|_| EOVERFLOW)
}

/// Makes the block device of `vol`.
fn make_disk(index: usize, array: &Arc<Array>, vol: Arc<Volume>) -> Result<VolDisk> {
    let id = vol.id;
    let params = DiskParams {
        capacity_sectors: sectors(vol.map.size_blocks())?,
        logical_block_size: BLOCK_BYTES,
        max_hw_sectors: MAX_REQUEST_SECTORS,
        io_min: array.io_min(),
        io_opt: array.io_opt(),
        max_discard_sectors: MAX_DISCARD_SECTORS,
    };
    let dev = VolumeDev::new(array.clone(), vol)?;
    let mut name = [0u8; 32];
    disk_name(index, id, &mut name)?;
    let name = CStr::from_bytes_until_nul(&name).map_err(|_| EINVAL)?;
    let stack = array.stack_on()?;
    // Before the disk exists: its requests may be deferred from the first.
    array.room_for_disk()?;
    let disk = Disk::new(fmt!("{}", name), &params, &stack, dev.clone())
        .inspect_err(|_| array.disk_gone())?;
    Ok(VolDisk {
        id,
        disk: Some(disk),
        dev,
    })
}

/// Whether a volume in service is named `name`: a deleted source kept for
/// its copies gives its name up, as any deleted volume does.
fn name_taken(table: &Table, name: &[u8; VOLUME_NAME_LEN]) -> bool {
    table
        .volumes
        .iter()
        .any(|v| v.name == *name && v.flags & volume_flags::DELETING == 0)
}

/// Checks a volume name from user space: 1 to 31 of `[A-Za-z0-9._-]`, NUL
/// padded.
fn volume_name(raw: &[u8; uapi::VOLUME_NAME_MAX]) -> Result<[u8; VOLUME_NAME_LEN]> {
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

/// What an array number is used for.
///
/// The table lock is never held across I/O: an array being assembled or
/// stopped holds its number as `Busy` while the lock is dropped, so a slow
/// member does not stall requests about other arrays.
enum Entry {
    /// The number is free.
    Free,
    /// An array is being assembled or stopped under this number.
    Busy,
    /// An array is running.
    Live(Slot),
}

/// All arrays, by number.
pub(crate) struct Controller {
    table: Pin<KBox<Mutex<KVec<Entry>>>>,
}

fn abi_error(what: &str, e: uapi::AbiError) -> Error {
    match e {
        uapi::AbiError::Size => pr_err!("{}: structure size does not match this kernel\n", what),
        uapi::AbiError::Reserved => pr_err!("{}: flags or reserved fields are not zero\n", what),
    }
    EINVAL
}

/// The request of type `T` at user address `arg`, checked by `check`, and
/// a writer for the answer in its place.
fn request<T: FromBytes>(
    arg: usize,
    what: &str,
    check: impl FnOnce(&T) -> core::result::Result<(), uapi::AbiError>,
) -> Result<(T, UserSliceWriter)> {
    let (mut reader, writer) =
        UserSlice::new(UserPtr::from_addr(arg), size_of::<T>()).reader_writer();
    let req = reader.read::<T>()?;
    check(&req).map_err(|e| abi_error(what, e))?;
    Ok((req, writer))
}

fn user_slice(addr: u64, len: usize) -> Result<UserSlice> {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    Ok(UserSlice::new(UserPtr::from_addr(addr), len))
}

/// The member paths from user space: `nr` NUL-terminated slots.
fn member_paths<'a>(buf: &'a [u8]) -> Result<KVec<&'a CStr>> {
    let mut paths = KVec::with_capacity(buf.len() / uapi::PATH_MAX, GFP_KERNEL)?;
    for (i, slot) in buf.chunks_exact(uapi::PATH_MAX).enumerate() {
        let path = slot
            .iter()
            .position(|&b| b == 0)
            .and_then(|nul| slot.get(..=nul))
            .and_then(|s| CStr::from_bytes_with_nul(s).ok())
            .ok_or_else(|| {
                pr_err!("member {}: path is not NUL terminated\n", i);
                EINVAL
            })?;
        if path.is_empty() {
            pr_err!("member {}: empty path\n", i);
            return Err(EINVAL);
        }
        paths.push(path, GFP_KERNEL)?;
    }
    Ok(paths)
}

impl Controller {
    /// An empty controller.
    pub(crate) fn new() -> Result<Self> {
        let mut slots = KVec::with_capacity(uapi::MAX_ARRAYS as usize, GFP_KERNEL)?;
        for _ in 0..uapi::MAX_ARRAYS {
            slots.push(Entry::Free, GFP_KERNEL)?;
        }
        Ok(Self {
            table: KBox::pin_init(kernel::new_mutex!(slots), GFP_KERNEL)?,
        })
    }

    #[inline(never)]
    fn assemble(&self, arg: usize) -> Result<isize> {
        let (req, mut writer) = request(arg, "assemble", uapi::Assemble::check)?;
        if !(uapi::MIN_MEMBERS..=uapi::MAX_MEMBERS).contains(&req.nr_members) {
            pr_err!(
                "assemble: {} members given, {} to {} allowed\n",
                req.nr_members,
                uapi::MIN_MEMBERS,
                uapi::MAX_MEMBERS
            );
            return Err(EINVAL);
        }
        let len = usize::try_from(req.nr_members)?
            .checked_mul(uapi::PATH_MAX)
            .ok_or(EINVAL)?;
        let mut buf = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        user_slice(req.paths, len)?.reader().read_slice(&mut buf)?;
        let paths = member_paths(&buf)?;

        let index = {
            let mut table = self.table.lock();
            let index = table
                .iter()
                .position(|e| matches!(e, Entry::Free))
                .ok_or_else(|| {
                    pr_err!(
                        "assemble: all {} array numbers are in use\n",
                        uapi::MAX_ARRAYS
                    );
                    ENOSPC
                })?;
            if let Some(e) = table.get_mut(index) {
                *e = Entry::Busy;
            }
            index
        };
        let built = self.build(index, &req, &paths, &mut writer);
        let mut table = self.table.lock();
        let entry = table.get_mut(index).ok_or(EINVAL)?;
        match built {
            Ok(slot) => {
                *entry = Entry::Live(slot);
                Ok(0)
            }
            Err(e) => {
                *entry = Entry::Free;
                Err(e)
            }
        }
    }

    /// Builds array number `index`; the caller holds the number as `Busy`.
    fn build(
        &self,
        index: usize,
        req: &uapi::Assemble,
        paths: &[&CStr],
        writer: &mut UserSliceWriter,
    ) -> Result<Slot> {
        // Tell user space the number first: once the disk exists, failing
        // would mean deleting a disk that others may already have opened.
        let out = uapi::Assemble {
            index: index as u32,
            ..*req
        };
        writer.write(&out)?;
        let array = Arc::pin_init(Array::new(paths)?, GFP_KERNEL)?;
        let vols = array.volume_list()?;
        let mut disks = KVec::with_capacity(vols.len(), GFP_KERNEL)?;
        for vol in vols.into_iter() {
            disks.push(make_disk(index, &array, vol)?, GFP_KERNEL)?;
        }
        pr_info!(
            "stria{}: assembled from {} members, {} volumes\n",
            index,
            paths.len(),
            disks.len()
        );
        Ok(Slot { disks, array })
    }

    #[inline(never)]
    fn stop(&self, arg: usize) -> Result<isize> {
        let (req, _) = request(arg, "stop", uapi::Stop::check)?;
        let slot = {
            let mut table = self.table.lock();
            let entry = table.get_mut(req.index as usize).ok_or(ENOENT)?;
            let Entry::Live(slot) = entry else {
                return Err(ENOENT);
            };
            slot.begin_stop().inspect_err(|_| {
                pr_err!("stria{}: cannot stop: a volume is open\n", req.index);
            })?;
            match core::mem::replace(entry, Entry::Busy) {
                Entry::Live(slot) => slot,
                _ => return Err(ENOENT),
            }
        };
        // Deleting the disk waits for in-flight I/O; then members close.
        drop(slot);
        if let Some(e) = self.table.lock().get_mut(req.index as usize) {
            *e = Entry::Free;
        }
        pr_info!("stria{}: stopped\n", req.index);
        Ok(0)
    }

    #[inline(never)]
    fn status(&self, arg: usize) -> Result<isize> {
        let (req, mut writer) = request(arg, "status", uapi::Status::check)?;
        let index = req.index;
        let st = {
            let table = self.table.lock();
            match table.get(index as usize) {
                Some(Entry::Live(slot)) => slot.array.status(index, slot.openers()),
                _ => return Err(ENOENT),
            }
        };
        writer.write(&st)?;
        Ok(0)
    }
}

impl Controller {
    /// Takes array `index` out of the table as `Busy` for a long operation.
    fn take(&self, index: u32) -> Result<Slot> {
        let mut table = self.table.lock();
        let entry = table.get_mut(index as usize).ok_or(ENOENT)?;
        if !matches!(entry, Entry::Live(_)) {
            return Err(ENOENT);
        }
        match core::mem::replace(entry, Entry::Busy) {
            Entry::Live(slot) => Ok(slot),
            _ => Err(ENOENT),
        }
    }

    /// Array `index`, left in the table; `ENOENT` if it is not running.
    fn running(&self, index: u32) -> Result<Arc<Array>> {
        match self.table.lock().get(index as usize) {
            Some(Entry::Live(slot)) => Ok(slot.array.clone()),
            _ => Err(ENOENT),
        }
    }

    #[inline(never)]
    fn gc(&self, arg: usize) -> Result<isize> {
        let (req, mut writer) = request(arg, "gc", uapi::Gc::check)?;
        if req.until_free_percent == 0 || req.until_free_percent > 100 {
            pr_err!("gc: the free space target must be 1 to 100 percent\n");
            return Err(EINVAL);
        }
        // Not taken out of the table: STATUS keeps answering meanwhile.
        let array = self.running(req.index)?;
        let pick = if req.flags & uapi::GC_GREEDY != 0 {
            Pick::Greedy
        } else {
            Pick::CostBenefit
        };
        let o = Array::collect(&array, u64::from(req.until_free_percent), pick)?;
        let out = uapi::Gc {
            stripes: o.stripes,
            freed_blocks: o.freed,
            ..req
        };
        writer.write(&out)?;
        Ok(0)
    }

    /// Puts back what [`Self::take`] took.
    fn put(&self, index: u32, slot: Slot) {
        if let Some(e) = self.table.lock().get_mut(index as usize) {
            *e = Entry::Live(slot);
        }
    }

    #[inline(never)]
    fn volume(&self, arg: usize) -> Result<isize> {
        let (req, mut writer) = request(arg, "volume", uapi::Volume::check)?;
        let mut slot = self.take(req.index)?;
        let r = Self::volume_op(&mut slot, req.index as usize, &req);
        self.put(req.index, slot);
        let id = r?;
        writer.write(&uapi::Volume { id, ..req })?;
        Ok(0)
    }

    fn volume_op(slot: &mut Slot, index: usize, req: &uapi::Volume) -> Result<u32> {
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
                let _frozen = d.disk.as_ref().map(|disk| disk.freeze());
                crate::blk::noio(|| {
                    Array::resize_volume(&slot.array, d.dev.volume(), size_blocks)
                })?;
                if let Some(disk) = d.disk.as_ref() {
                    disk.set_capacity(sectors(size_blocks)?);
                }
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
    fn copy(slot: &mut Slot, index: usize, req: &uapi::Volume, table: &Table) -> Result<u32> {
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
            let _frozen = d.disk.as_ref().map(|disk| disk.freeze());
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

    #[inline(never)]
    fn diff(&self, arg: usize) -> Result<isize> {
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
    fn volumes(&self, arg: usize) -> Result<isize> {
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
        let Some(Entry::Live(slot)) = table.get(index as usize) else {
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

impl Control for Controller {
    // Each request's handler keeps its buffers in a frame of its own:
    // inlined together they would all be on the stack at once, below a
    // partition scan that may go as deep as the block layer's submission.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        if !capable_sys_admin() {
            return Err(EPERM);
        }
        match cmd {
            uapi::IOC_ASSEMBLE => self.assemble(arg),
            uapi::IOC_STOP => self.stop(arg),
            uapi::IOC_STATUS => self.status(arg),
            uapi::IOC_VOLUME => self.volume(arg),
            uapi::IOC_VOLUMES => self.volumes(arg),
            uapi::IOC_GC => self.gc(arg),
            uapi::IOC_DIFF => self.diff(arg),
            _ => Err(ENOTTY),
        }
    }
}
