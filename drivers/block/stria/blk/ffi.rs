// SPDX-License-Identifier: GPL-2.0

//! Prototypes of the one-line C wrappers in `stria_helpers.c`.

use kernel::bindings;
use kernel::ffi::c_char;
use kernel::ffi::c_uint;
use kernel::ffi::c_void;

// Kernel structures that embed lockdep types are empty to bindgen when
// lockdep is off; they only ever cross this boundary behind pointers.
#[allow(improper_ctypes)]
extern "C" {
    pub(super) fn stria_blk_mq_alloc_disk(
        set: *mut bindings::blk_mq_tag_set,
        lim: *mut bindings::queue_limits,
        queuedata: *mut c_void,
    ) -> *mut bindings::gendisk;
    pub(super) fn stria_bio_iter_iovec(
        bio: *mut bindings::bio,
        iter: bindings::bvec_iter,
    ) -> bindings::bio_vec;
    pub(super) fn stria_bio_advance_iter_single(
        bio: *const bindings::bio,
        iter: *mut bindings::bvec_iter,
        bytes: c_uint,
    );
    pub(super) fn stria_bdev_nr_sectors(bdev: *mut bindings::block_device) -> bindings::sector_t;
    pub(super) fn stria_bdev_logical_block_size(bdev: *mut bindings::block_device) -> c_uint;
    pub(super) fn stria_bdev_dev(bdev: *mut bindings::block_device) -> bindings::dev_t;
    pub(super) fn stria_disk_queuedata(disk: *mut bindings::gendisk) -> *mut c_void;
    pub(super) fn stria_blk_open_read_write_excl() -> bindings::blk_mode_t;
    pub(super) fn stria_blk_feat_write_cache_fua() -> bindings::blk_features_t;
    pub(super) fn stria_gfp_noio() -> bindings::gfp_t;
    pub(super) fn stria_kmap_local_page(page: *mut bindings::page) -> *mut c_void;
    pub(super) fn stria_kunmap_local(addr: *const c_void);
    pub(super) fn stria_memzero_bvec(bvec: *mut bindings::bio_vec);
    pub(super) fn stria_memalloc_noio_save() -> c_uint;
    pub(super) fn stria_memalloc_noio_restore(flags: c_uint);
    pub(super) fn stria_cond_resched();
    pub(super) fn stria_alloc_workqueue(
        name: *const c_char,
        flags: c_uint,
    ) -> *mut bindings::workqueue_struct;
}
