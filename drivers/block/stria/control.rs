// SPDX-License-Identifier: GPL-2.0

//! The control device's ioctls: ASSEMBLE, STOP, STATUS, VOLUME and VOLUMES.

// Sizes and offsets here come from members or from user space.
#![deny(clippy::arithmetic_side_effects)]

mod arrays;
mod queries;
mod volumes;

use crate::array::Array;
use crate::array::MAX_REQUEST_SECTORS;
use crate::blk::disk::Disk;
use crate::blk::disk::DiskParams;
use crate::blk::misc::capable_sys_admin;
use crate::blk::misc::Control;
use crate::format::geometry;
use crate::format::geometry::BLOCK_SIZE;
use crate::uapi;
use crate::volume::VolumeDev;
use crate::writer::Volume;
use core::pin::Pin;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;
use kernel::sync::Mutex;
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
    disk: Disk<VolumeDev>,
    dev: Arc<VolumeDev>,
}

/// An assembled array and the devices of its volumes.
struct Assembled {
    disks: KVec<VolDisk>,
    array: Arc<Array>,
}

impl Assembled {
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

impl Drop for Assembled {
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
        logical_block_size: BLOCK_SIZE as u32,
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
    let disk = Disk::new(fmt!("{}", name), &params, &stack, dev.clone())?;
    Ok(VolDisk { id, disk, dev })
}

/// What an array number is used for.
///
/// The table lock is never held across I/O: an array being assembled or
/// stopped holds its number as `Busy` while the lock is dropped, so a slow
/// member does not stall requests about other arrays.
enum Claim {
    /// The number is free.
    Free,
    /// An array is being assembled or stopped under this number.
    Busy,
    /// An array is running.
    Live(Assembled),
}

/// All arrays, by number.
pub(crate) struct Controller {
    table: Pin<KBox<Mutex<KVec<Claim>>>>,
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
            slots.push(Claim::Free, GFP_KERNEL)?;
        }
        Ok(Self {
            table: KBox::pin_init(kernel::new_mutex!(slots), GFP_KERNEL)?,
        })
    }
}

impl Controller {
    /// Takes array `index` out of the table as `Busy` for a long operation.
    fn take(&self, index: u32) -> Result<Assembled> {
        let mut table = self.table.lock();
        let entry = table.get_mut(index as usize).ok_or(ENOENT)?;
        if !matches!(entry, Claim::Live(_)) {
            return Err(ENOENT);
        }
        match core::mem::replace(entry, Claim::Busy) {
            Claim::Live(slot) => Ok(slot),
            _ => Err(ENOENT),
        }
    }

    /// Array `index`, left in the table; `ENOENT` if it is not running.
    fn running(&self, index: u32) -> Result<Arc<Array>> {
        match self.table.lock().get(index as usize) {
            Some(Claim::Live(slot)) => Ok(slot.array.clone()),
            _ => Err(ENOENT),
        }
    }

    /// Puts back what [`Self::take`] took.
    fn put(&self, index: u32, slot: Assembled) {
        if let Some(e) = self.table.lock().get_mut(index as usize) {
            *e = Claim::Live(slot);
        }
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
