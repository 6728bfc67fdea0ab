// SPDX-License-Identifier: GPL-2.0

//! A blk-mq disk: tag set, queue limits and features, and the gendisk.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use super::bdev::Bdev;
use super::ffi;
use super::request::Pdu;
use super::request::Request;
use super::Status;
use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::error::to_result;
use kernel::ffi::c_int;
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::sync::ArcBorrow;
use kernel::types::Opaque;

// `struct module` holds lockdep types that are empty without lockdep; only
// its address is used.
#[allow(improper_ctypes)]
extern "C" {
    /// The module this code is linked into, for `owner` fields.
    static __this_module: bindings::module;
}

/// Requests a disk's queue holds at once.
pub(crate) const QUEUE_DEPTH: u32 = 128;

/// What a stacking driver implements for its disks.
pub(crate) trait Operations: Send + Sync + Sized + 'static {
    /// Takes a host request; it must be ended exactly once, now or later.
    ///
    /// Runs in atomic context (under RCU: the tag set is not blocking), with
    /// I/O reclaim disabled: it must not sleep, so no sleeping allocation,
    /// no mutex and no bio submission; what needs those goes to a worker.
    fn queue_rq(this: ArcBorrow<'_, Self>, rq: Request<Self>);

    /// Called when a fanned-out request ends, just before it completes,
    /// with the cookie [`Fanout::set_cookie`](super::request::Fanout::set_cookie)
    /// kept (0 if none).
    ///
    /// Runs in interrupt context.
    fn completed(&self, _status: Status, _cookie: u32) {}

    /// The disk is being opened; an error refuses the open.
    fn open(&self) -> Result {
        Ok(())
    }

    /// A successful open is being closed.
    fn release(&self) {}
}

/// Returns the driver data of a queue built by [`Disk::new`] for `T`.
///
/// # Safety
///
/// `q` is the live queue of a [`Disk<T>`].
pub(super) unsafe fn queue_data<'a, T: Operations>(q: *mut bindings::request_queue) -> &'a T {
    // SAFETY: Per the safety contract `queuedata` came from `Arc::into_raw`
    // and the disk keeps that reference until its queue is gone.
    unsafe { &*(*q).queuedata.cast::<T>() }
}

struct Vtable<T: Operations>(PhantomData<T>);

impl<T: Operations> Vtable<T> {
    const MQ_OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq),
        // Every other hook unset.
        ..pin_init::zeroed()
    };

    const FOPS: bindings::block_device_operations = bindings::block_device_operations {
        open: Some(Self::open),
        release: Some(Self::release),
        free_disk: Some(Self::free_disk),
        // An open disk pins the module.
        owner: (&raw const __this_module).cast_mut(),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// Called by blk-mq with a started request of a `T` queue.
    unsafe extern "C" fn queue_rq(
        hctx: *mut bindings::blk_mq_hw_ctx,
        bd: *const bindings::blk_mq_queue_data,
    ) -> bindings::blk_status_t {
        // SAFETY: blk-mq passes valid pointers; the queue is a `T` queue,
        // whose data came from `Arc::into_raw` and is released only by
        // `free_disk`, after the queue is gone.
        let (data, rq) = unsafe {
            (
                ArcBorrow::<T>::from_raw((*(*hctx).queue).queuedata.cast::<T>()),
                (*bd).rq,
            )
        };
        // SAFETY: `rq` is the request blk-mq just handed us; starting it marks
        // it in flight (tags, accounting, tracing) before any completion.
        unsafe { bindings::blk_mq_start_request(rq) };
        // SAFETY: The started request is handed to us and nobody else.
        if let Some(rq) = unsafe { Request::<T>::from_raw(rq) } {
            // Memory the driver allocates for a request must not be
            // reclaimed by writing to this very queue.
            super::noio(|| T::queue_rq(data, rq));
        }
        Status::OK.raw()
    }

    /// # Safety
    ///
    /// Called by the block layer for a `T` disk.
    unsafe extern "C" fn open(disk: *mut bindings::gendisk, _mode: bindings::blk_mode_t) -> c_int {
        // SAFETY: The disk and its queue are live while it is being opened.
        let data = unsafe { &*ffi::stria_disk_queuedata(disk).cast::<T>() };
        match data.open() {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the block layer for a `T` disk it opened successfully.
    unsafe extern "C" fn release(disk: *mut bindings::gendisk) {
        // SAFETY: As in `open`.
        let data = unsafe { &*ffi::stria_disk_queuedata(disk).cast::<T>() };
        data.release();
    }

    /// Drops the disk's reference to its queue data.
    ///
    /// The last close of the disk may come after it was deleted (a deferred
    /// `fput`), so the data lives until the gendisk itself is released.
    ///
    /// # Safety
    ///
    /// Called once by `disk_release` for a `T` disk that was added.
    unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
        // SAFETY: `queuedata` holds the reference from `Arc::into_raw` made
        // in `Disk::new`; nothing uses the disk after this.
        drop(unsafe { Arc::from_raw(ffi::stria_disk_queuedata(disk).cast::<T>().cast_const()) });
    }
}

/// A blk-mq tag set of a stacking driver whose `queue_rq` never sleeps.
///
/// # Invariants
///
/// `inner` was set up by `blk_mq_alloc_tag_set` and is freed once, on drop.
#[pin_data(PinnedDrop)]
struct TagSet<T: Operations> {
    #[pin]
    inner: Opaque<bindings::blk_mq_tag_set>,
    _t: PhantomData<T>,
}

impl<T: Operations> TagSet<T> {
    fn new(queue_depth: u32) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::blk_mq_tag_set| {
                // SAFETY: `slot` is valid for writes; the set is filled before
                // `blk_mq_alloc_tag_set` reads it.
                unsafe {
                    slot.write_bytes(0, 1);
                    (*slot).ops = &Vtable::<T>::MQ_OPS;
                    (*slot).nr_hw_queues = 1;
                    (*slot).nr_maps = 1;
                    (*slot).queue_depth = queue_depth;
                    (*slot).numa_node = bindings::NUMA_NO_NODE;
                    (*slot).cmd_size = core::mem::size_of::<Pdu>() as u32;
                    // `queue_rq` never sleeps (it hands what must wait, member
                    // bio submission included, to workers); requests complete
                    // through the members' queues; the members' own
                    // schedulers order the I/O, so none here by default.
                    (*slot).flags = bindings::BLK_MQ_F_STACKING
                        | bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT;
                    to_result(bindings::blk_mq_alloc_tag_set(slot))
                }
            }),
            _t: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: Operations> PinnedDrop for TagSet<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the set is allocated; its only disk
        // was released first (see `Disk::drop`).
        unsafe { bindings::blk_mq_free_tag_set(self.inner.get()) };
    }
}

/// Shape of a new disk.
pub(crate) struct DiskParams {
    /// Capacity in 512-byte sectors.
    pub(crate) capacity_sectors: u64,
    /// Logical block size in bytes.
    pub(crate) logical_block_size: u32,
    /// Largest request in 512-byte sectors.
    pub(crate) max_hw_sectors: u32,
    /// Preferred minimum I/O size in bytes.
    pub(crate) io_min: u32,
    /// Optimal I/O size in bytes.
    pub(crate) io_opt: u32,
    /// Largest discard and write-zeroes request in 512-byte sectors, 0 for
    /// neither; the driver unmaps what they cover (so write-zeroes unmaps,
    /// whatever `REQ_NOUNMAP` says: a thin volume has nothing to keep).
    pub(crate) max_discard_sectors: u32,
}

/// A member the disk's limits are stacked on, and where its data starts.
pub(crate) struct StackOn<'a> {
    /// The member.
    pub(crate) bdev: &'a Bdev,
    /// Offset of the disk's data on the member, in 512-byte sectors.
    pub(crate) offset_sectors: u64,
}

/// A disk added to the system, backed by a `T`.
///
/// # Invariants
///
/// - `gendisk` was allocated on `tag_set` and added with `device_add_disk`.
/// - Its `queuedata` holds a reference made by `Arc::into_raw`, released by
///   `free_disk` when the gendisk is released.
pub(crate) struct Disk<T: Operations> {
    gendisk: *mut bindings::gendisk,
    tag_set: Pin<KBox<TagSet<T>>>,
}

// SAFETY: The gendisk may be deleted from any process context.
unsafe impl<T: Operations> Send for Disk<T> {}
// SAFETY: `&Disk` only reads immutable state.
unsafe impl<T: Operations> Sync for Disk<T> {}

impl<T: Operations> Disk<T> {
    /// Creates a disk named `name` with write-back cache and FUA, served by
    /// `data`, and adds it to the system.
    ///
    /// The queue limits are stacked on `members` first, so that alignment,
    /// segment and boundary rules of every member hold for member bios.
    pub(crate) fn new(
        name: fmt::Arguments<'_>,
        params: &DiskParams,
        members: &[StackOn<'_>],
        data: Arc<T>,
    ) -> Result<Self> {
        let tag_set = KBox::pin_init(TagSet::<T>::new(QUEUE_DEPTH), GFP_KERNEL)?;

        // Filled by `blk_set_stacking_limits`.
        let mut lim: bindings::queue_limits = pin_init::zeroed();
        // SAFETY: `lim` is a valid, exclusively borrowed `queue_limits`.
        unsafe { bindings::blk_set_stacking_limits(&mut lim) };
        for m in members {
            // SAFETY: `lim` is valid; the member is open; the prefix is a
            // NUL-terminated string.
            unsafe {
                bindings::queue_limits_stack_bdev(
                    &mut lim,
                    m.bdev.raw(),
                    m.offset_sectors,
                    c"stria".as_char_ptr(),
                )
            };
        }
        lim.logical_block_size = lim.logical_block_size.max(params.logical_block_size);
        lim.physical_block_size = lim.physical_block_size.max(lim.logical_block_size);
        lim.max_hw_sectors = params.max_hw_sectors;
        lim.io_min = params.io_min;
        lim.io_opt = params.io_opt;
        lim.chunk_sectors = 0;
        // Discard and write-zeroes are the driver's own (map changes), not
        // the members'; nothing else may be inherited from them.
        let discard = params.max_discard_sectors;
        lim.max_hw_discard_sectors = discard;
        lim.max_user_discard_sectors = discard;
        lim.discard_granularity = if discard > 0 {
            lim.logical_block_size
        } else {
            0
        };
        lim.discard_alignment = 0;
        lim.max_discard_segments = 1;
        lim.max_write_zeroes_sectors = discard;
        lim.max_hw_wzeroes_unmap_sectors = discard;
        lim.max_user_wzeroes_unmap_sectors = discard;
        lim.max_hw_zone_append_sectors = 0;
        lim.atomic_write_hw_max = 0;
        // Flushes and FUA must reach the driver, or nothing would be durable.
        // SAFETY: Reading a constant.
        lim.features = unsafe { ffi::stria_blk_feat_write_cache_fua() };

        let raw_data = Arc::into_raw(data);
        // SAFETY: The tag set is allocated; `lim` is filled; the queue data
        // reference is owned by the disk from here on.
        let gendisk = from_err_ptr(unsafe {
            ffi::stria_blk_mq_alloc_disk(
                tag_set.inner.get(),
                &mut lim,
                raw_data.cast_mut().cast::<c_void>(),
            )
        });
        let gendisk = match gendisk {
            Ok(g) => g,
            Err(e) => {
                // SAFETY: The disk was not created, so the reference is ours.
                drop(unsafe { Arc::from_raw(raw_data) });
                return Err(e);
            }
        };

        let cleanup = kernel::types::ScopeGuard::new(move || {
            // SAFETY: The disk was never added; dropping it releases the
            // queue, after which the queue data reference is ours again.
            unsafe {
                bindings::put_disk(gendisk);
                drop(Arc::from_raw(raw_data));
            }
        });

        let mut name_buf = [0u8; bindings::DISK_NAME_LEN as usize];
        let mut w = kernel::str::NullTerminatedFormatter::new(&mut name_buf).ok_or(EINVAL)?;
        fmt::write(&mut w, name).map_err(|_| EINVAL)?;

        // SAFETY: We own the new, not yet added disk.
        unsafe {
            for (d, s) in (*gendisk).disk_name.iter_mut().zip(name_buf) {
                *d = s as kernel::ffi::c_char;
            }
            (*gendisk).fops = &Vtable::<T>::FOPS;
            bindings::set_capacity(gendisk, params.capacity_sectors);
            to_result(bindings::device_add_disk(
                core::ptr::null_mut(),
                gendisk,
                core::ptr::null_mut(),
            ))?;
        }
        cleanup.dismiss();

        // INVARIANT: The disk is added and its queue data is `raw_data`,
        // which `free_disk` releases.
        Ok(Self { gendisk, tag_set })
    }

    /// The disk's name, as in `/dev`.
    /// Changes the disk's size and tells user space.
    pub(crate) fn set_capacity(&self, sectors: u64) {
        // SAFETY: By the type invariant the disk is added and live.
        unsafe { bindings::set_capacity_and_notify(self.gendisk, sectors) };
    }
}

impl<T: Operations> Disk<T> {
    /// Waits until no request of the disk is in flight and holds new ones
    /// back until the guard is dropped.
    pub(crate) fn freeze(&self) -> Frozen<'_, T> {
        // SAFETY: By the type invariant the disk is added, so its queue is
        // live.
        unsafe { bindings::blk_mq_freeze_queue_nomemsave((*self.gendisk).queue) };
        Frozen(self)
    }
}

/// A disk whose queue is frozen: see [`Disk::freeze`].
pub(crate) struct Frozen<'a, T: Operations>(&'a Disk<T>);

impl<T: Operations> Drop for Frozen<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The queue was frozen by `Disk::freeze`, once, and the disk
        // outlives the guard.
        unsafe { bindings::blk_mq_unfreeze_queue_nomemrestore((*self.0.gendisk).queue) };
    }
}

impl<T: Operations> Drop for Disk<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the disk is added: deleting it
        // drains every request; the queue data goes with the last reference
        // to the gendisk (`free_disk`).
        unsafe {
            bindings::del_gendisk(self.gendisk);
            bindings::put_disk(self.gendisk);
        }
        // `tag_set` is freed after this, once the disk no longer needs it.
        let _ = &self.tag_set;
    }
}
