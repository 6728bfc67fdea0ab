// SPDX-License-Identifier: GPL-2.0

//! The control device's ioctls: ASSEMBLE, STOP and STATUS.

use crate::array::Array;
use crate::array::BLOCK_BYTES;
use crate::array::MAX_REQUEST_SECTORS;
use crate::blk::disk::Disk;
use crate::blk::disk::DiskParams;
use crate::blk::misc::capable_sys_admin;
use crate::blk::misc::Control;
use crate::uapi;
use core::pin::Pin;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;
use kernel::sync::Mutex;
use kernel::uaccess::UserSlice;

/// An assembled array and the volume it serves.
struct Slot {
    disk: Option<Disk<Array>>,
    array: Arc<Array>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Deleting the disk drains its I/O; what the writer still buffers
        // then goes to the members before they are closed.
        drop(self.disk.take());
        Array::shut_down(&self.array);
    }
}

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

    fn assemble(&self, arg: usize) -> Result<isize> {
        let (mut reader, mut writer) =
            UserSlice::new(UserPtr::from_addr(arg), uapi::Assemble::SIZE).reader_writer();
        let mut raw = [0u8; uapi::Assemble::SIZE];
        reader.read_slice(&mut raw)?;
        let req = uapi::Assemble::decode(&raw).map_err(|e| abi_error("assemble", e))?;
        if !(uapi::MIN_MEMBERS..=uapi::MAX_MEMBERS).contains(&req.nr_members) {
            pr_err!(
                "assemble: {} members given, {} to {} allowed\n",
                req.nr_members,
                uapi::MIN_MEMBERS,
                uapi::MAX_MEMBERS
            );
            return Err(EINVAL);
        }
        let len = req.nr_members as usize * uapi::PATH_MAX;
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
        writer: &mut kernel::uaccess::UserSliceWriter,
    ) -> Result<Slot> {
        // Tell user space the number first: once the disk exists, failing
        // would mean deleting a disk that others may already have opened.
        let out = uapi::Assemble {
            index: index as u32,
            ..*req
        };
        writer.write_slice(&out.encode())?;
        let array = Arc::pin_init(Array::new(paths)?, GFP_KERNEL)?;
        let params = DiskParams {
            capacity_sectors: array.capacity_sectors(),
            logical_block_size: BLOCK_BYTES,
            max_hw_sectors: MAX_REQUEST_SECTORS,
            io_min: array.io_min(),
            io_opt: array.io_opt(),
        };
        let disk = Disk::new(
            fmt!("stria{}", index),
            &params,
            &array.stack_on()?,
            array.clone(),
        )?;
        pr_info!(
            "{}: assembled from {} members, {} MiB\n",
            disk.name().to_str().unwrap_or("?"),
            paths.len(),
            array.capacity_sectors() >> 11
        );
        Ok(Slot {
            disk: Some(disk),
            array,
        })
    }

    fn stop(&self, arg: usize) -> Result<isize> {
        let mut raw = [0u8; uapi::Stop::SIZE];
        UserSlice::new(UserPtr::from_addr(arg), uapi::Stop::SIZE)
            .reader()
            .read_slice(&mut raw)?;
        let req = uapi::Stop::decode(&raw).map_err(|e| abi_error("stop", e))?;
        let slot = {
            let mut table = self.table.lock();
            let entry = table.get_mut(req.index as usize).ok_or(ENOENT)?;
            let Entry::Live(slot) = entry else {
                return Err(ENOENT);
            };
            slot.array.begin_stop().inspect_err(|_| {
                pr_err!("stria{}: cannot stop: the volume is open\n", req.index);
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

    fn status(&self, arg: usize) -> Result<isize> {
        let (mut reader, mut writer) =
            UserSlice::new(UserPtr::from_addr(arg), uapi::Status::SIZE).reader_writer();
        let mut raw = [0u8; uapi::Status::SIZE];
        reader.read_slice(&mut raw)?;
        let index = uapi::Status::decode_request(&raw).map_err(|e| abi_error("status", e))?;
        let st = {
            let table = self.table.lock();
            match table.get(index as usize) {
                Some(Entry::Live(slot)) => slot.array.status(index),
                _ => return Err(ENOENT),
            }
        };
        st.encode(&mut raw);
        writer.write_slice(&raw)?;
        Ok(0)
    }
}

impl Control for Controller {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        if !capable_sys_admin() {
            return Err(EPERM);
        }
        match cmd {
            uapi::IOC_ASSEMBLE => self.assemble(arg),
            uapi::IOC_STOP => self.stop(arg),
            uapi::IOC_STATUS => self.status(arg),
            _ => Err(ENOTTY),
        }
    }
}
