// SPDX-License-Identifier: GPL-2.0

//! Arrays: assembled from their members, stopped, collected on demand.

use super::make_disk;
use super::member_paths;
use super::request;
use super::user_slice;
use super::Assembled;
use super::Claim;
use super::Controller;
use crate::alloc::Pick;
use crate::array::Array;
use crate::uapi;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;
use kernel::uaccess::UserSliceWriter;

impl Controller {
    #[inline(never)]
    pub(super) fn assemble(&self, arg: usize) -> Result<isize> {
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
                .position(|e| matches!(e, Claim::Free))
                .ok_or_else(|| {
                    pr_err!(
                        "assemble: all {} array numbers are in use\n",
                        uapi::MAX_ARRAYS
                    );
                    ENOSPC
                })?;
            if let Some(e) = table.get_mut(index) {
                *e = Claim::Busy;
            }
            index
        };
        let built = self.build(index, &req, &paths, &mut writer);
        let mut table = self.table.lock();
        let entry = table.get_mut(index).ok_or(EINVAL)?;
        match built {
            Ok(slot) => {
                *entry = Claim::Live(slot);
                Ok(0)
            }
            Err(e) => {
                *entry = Claim::Free;
                Err(e)
            }
        }
    }

    /// Builds array number `index`; the caller holds the number as `Busy`.
    pub(super) fn build(
        &self,
        index: usize,
        req: &uapi::Assemble,
        paths: &[&CStr],
        writer: &mut UserSliceWriter,
    ) -> Result<Assembled> {
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
        Ok(Assembled { disks, array })
    }

    #[inline(never)]
    pub(super) fn stop(&self, arg: usize) -> Result<isize> {
        let (req, _) = request(arg, "stop", uapi::Stop::check)?;
        let slot = {
            let mut table = self.table.lock();
            let entry = table.get_mut(req.index as usize).ok_or(ENOENT)?;
            let Claim::Live(slot) = entry else {
                return Err(ENOENT);
            };
            slot.begin_stop().inspect_err(|_| {
                pr_err!("stria{}: cannot stop: a volume is open\n", req.index);
            })?;
            match core::mem::replace(entry, Claim::Busy) {
                Claim::Live(slot) => slot,
                _ => return Err(ENOENT),
            }
        };
        // Deleting the disk waits for in-flight I/O; then members close.
        drop(slot);
        if let Some(e) = self.table.lock().get_mut(req.index as usize) {
            *e = Claim::Free;
        }
        pr_info!("stria{}: stopped\n", req.index);
        Ok(0)
    }

    #[inline(never)]
    pub(super) fn gc(&self, arg: usize) -> Result<isize> {
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
        let o = Array::collect(array, u64::from(req.until_free_percent), pick)?;
        let out = uapi::Gc {
            stripes: o.stripes,
            freed_blocks: o.freed,
            ..req
        };
        writer.write(&out)?;
        Ok(0)
    }
}
