// SPDX-License-Identifier: GPL-2.0

//! Member block devices, opened exclusively.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use super::ffi;
use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::str::CStr;

/// A block device opened for reading and writing with an exclusive claim.
///
/// Each `Bdev` claims its device with a holder of its own, so the same device
/// cannot be opened twice, by this array or by any other holder.
///
/// # Invariants
///
/// - `file` is a block-device file returned by `bdev_file_open_by_path` and
///   not yet released; it is released exactly once, in `drop`.
/// - `bdev` is `file_bdev(file)` and lives as long as `file`.
pub(crate) struct Bdev {
    file: *mut bindings::file,
    bdev: *mut bindings::block_device,
    _holder: KBox<u8>,
}

// SAFETY: The block device is reference counted by the open file and may be
// used and released from any thread.
unsafe impl Send for Bdev {}
// SAFETY: Only shared reads and bio submission go through `&Bdev`; the block
// layer serialises what it needs to.
unsafe impl Sync for Bdev {}

impl Bdev {
    /// Opens `path` read-write with an exclusive claim.
    ///
    /// Fails with `ENOENT` if there is no such file, `ENOTBLK` if it is not a
    /// block device and `EBUSY` if the device is already claimed.
    pub(crate) fn open_exclusive(path: &CStr) -> Result<Self> {
        // The holder only has to be a unique address for as long as the claim
        // lasts; a one-byte allocation owned by the `Bdev` is exactly that.
        let holder = KBox::new(0u8, GFP_KERNEL)?;
        let holder_ptr: *const u8 = &*holder;
        // SAFETY: `path` is NUL terminated; the holder pointer stays valid
        // until `drop`, which releases the claim first; no holder operations.
        let file = from_err_ptr(unsafe {
            bindings::bdev_file_open_by_path(
                path.as_char_ptr(),
                ffi::stria_blk_open_read_write_excl(),
                holder_ptr.cast_mut().cast(),
                core::ptr::null(),
            )
        })?;
        // SAFETY: `file` is a valid block-device file.
        let bdev = unsafe { bindings::file_bdev(file) };
        // INVARIANT: `file` was just opened and `bdev` belongs to it.
        Ok(Self {
            file,
            bdev,
            _holder: holder,
        })
    }

    /// Size of the device in 512-byte sectors.
    pub(crate) fn nr_sectors(&self) -> u64 {
        // SAFETY: By the type invariant `bdev` is valid.
        unsafe { ffi::stria_bdev_nr_sectors(self.bdev) }
    }

    /// Logical block size of the device in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: By the type invariant `bdev` is valid.
        unsafe { ffi::stria_bdev_logical_block_size(self.bdev) }
    }

    /// Device number as (major, minor).
    pub(crate) fn dev(&self) -> (u32, u32) {
        // SAFETY: By the type invariant `bdev` is valid.
        let dev = unsafe { ffi::stria_bdev_dev(self.bdev) };
        (dev >> 20, dev & 0xfffff)
    }

    /// Reads `buf.len()` bytes at byte `offset`, waiting for the I/O.
    ///
    /// Process context only, outside any bio submission.  The buffer is a
    /// `KVec` because the block layer needs memory from the direct map
    /// (kmalloc), never the stack or vmalloc.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut KVec<u8>) -> Result {
        // SAFETY: The buffer is borrowed mutably for the whole call.
        unsafe {
            self.rw(
                offset,
                buf.as_mut_ptr(),
                buf.len(),
                bindings::req_op_REQ_OP_READ,
            )
        }
    }

    /// Writes `buf` at byte `offset`, waiting for the I/O (not for the
    /// device's cache: see [`Self::flush`]).  Same rules as [`Self::read_at`].
    pub(crate) fn write_at(&self, offset: u64, buf: &KVec<u8>) -> Result {
        // SAFETY: A write only reads the buffer, borrowed for the whole call.
        unsafe {
            self.rw(
                offset,
                buf.as_ptr().cast_mut(),
                buf.len(),
                bindings::req_op_REQ_OP_WRITE,
            )
        }
    }

    /// Synchronous I/O of `len` bytes at `data` to or from byte `offset`.
    ///
    /// # Safety
    ///
    /// `data` is a kmalloc allocation of at least `len` bytes that stays
    /// valid for the call, writable if `op` is a read.
    unsafe fn rw(&self, offset: u64, data: *mut u8, len: usize, op: bindings::req_op) -> Result {
        if offset % 512 != 0 || len % 512 != 0 || len == 0 {
            return Err(EINVAL);
        }
        // SAFETY: By the type invariant `bdev` is open; the buffer is valid
        // per the safety contract.
        to_result(unsafe { bindings::bdev_rw_virt(self.bdev, offset / 512, data.cast(), len, op) })
    }

    /// Makes everything written so far durable on the device.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: By the type invariant `bdev` is open.
        to_result(unsafe { bindings::blkdev_issue_flush(self.bdev) })
    }

    pub(super) fn raw(&self) -> *mut bindings::block_device {
        self.bdev
    }
}

impl Drop for Bdev {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `file` is open and released only here.
        unsafe { bindings::bdev_fput(self.file) };
    }
}
