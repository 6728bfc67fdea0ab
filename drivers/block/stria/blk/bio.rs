// SPDX-License-Identifier: GPL-2.0

//! Member bios and the bio set they come from.
//!
//! C header: [`include/linux/bio.h`](srctree/include/linux/bio.h)

use super::bdev::Bdev;
use super::ffi;
use super::request::Segment;
use core::pin::Pin;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A pool of bios with a reserve, so member I/O always makes progress.
///
/// # Invariants
///
/// `inner` was set up by `bioset_init` and is torn down once, on drop.
#[pin_data(PinnedDrop)]
pub(crate) struct BioSet {
    #[pin]
    pub(super) inner: Opaque<bindings::bio_set>,
}

// SAFETY: A bio set is a mempool and slab; both are thread safe.
unsafe impl Send for BioSet {}
// SAFETY: As above.
unsafe impl Sync for BioSet {}

impl BioSet {
    /// A bio set keeping `reserve` bios (with their vectors) in reserve.
    pub(crate) fn new(reserve: u32) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::bio_set| {
                // SAFETY: `slot` is valid for writes; `bioset_init` expects
                // zeroed memory and cleans up after itself on failure.
                unsafe {
                    slot.write_bytes(0, 1);
                    to_result(bindings::bioset_init(
                        slot,
                        reserve,
                        0,
                        (bindings::BIOSET_NEED_BVECS | bindings::BIOSET_NEED_RESCUER) as i32,
                    ))
                }
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for BioSet {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the set is initialised; no bio of it
        // is in flight, since every user ends before the set is dropped.
        unsafe { bindings::bioset_exit(self.inner.get()) };
    }
}

/// Operation and flags of a member bio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BioOp {
    /// Read.
    Read,
    /// Write, with `REQ_FUA` if `fua`.
    Write {
        /// Whether the data must be durable on completion.
        fua: bool,
    },
}

impl BioOp {
    pub(super) fn opf(self) -> bindings::blk_opf_t {
        match self {
            BioOp::Read => bindings::req_op_REQ_OP_READ,
            BioOp::Write { fua: false } => bindings::req_op_REQ_OP_WRITE,
            BioOp::Write { fua: true } => bindings::req_op_REQ_OP_WRITE | super::REQ_FUA,
        }
    }
}

/// A bio being built, owned until it is submitted.
///
/// # Invariants
///
/// - `bio` was allocated from a [`BioSet`] for a [`Bdev`] and is not yet
///   submitted; if dropped unsubmitted it is put back.
/// - Every page in it belongs to the request `owner`.
pub(crate) struct Bio {
    bio: NonNull<bindings::bio>,
    owner: *mut bindings::request,
}

impl Bio {
    /// Allocates a bio for `bdev` with room for `nr_vecs` segments, to carry
    /// pages of request `owner` (see [`super::request::Fanout::new_bio`]).
    ///
    /// It may sleep (never in `queue_rq`) but does not recurse into I/O,
    /// and with the bio set's reserve it only fails for impossible
    /// arguments.
    pub(super) fn new(
        set: &BioSet,
        bdev: &Bdev,
        op: BioOp,
        nr_vecs: u16,
        owner: *mut bindings::request,
    ) -> Result<Self> {
        // SAFETY: `set` is initialised and `bdev` open; GFP_NOIO keeps
        // reclaim from issuing I/O back to us.
        let bio = unsafe {
            bindings::bio_alloc_bioset(
                bdev.raw(),
                nr_vecs,
                op.opf(),
                ffi::stria_gfp_noio(),
                set.inner.get(),
            )
        };
        // INVARIANT: Freshly allocated, not submitted, and without pages.
        Ok(Self {
            bio: NonNull::new(bio).ok_or(ENOMEM)?,
            owner,
        })
    }

    /// Sets the first member sector (512 bytes) of the bio.
    pub(crate) fn set_sector(&mut self, sector: u64) {
        // SAFETY: By the type invariant we own the unsubmitted bio.
        unsafe { (*self.bio.as_ptr()).bi_iter.bi_sector = sector };
    }

    /// Appends `seg`; returns `false` if the bio has no room for it or the
    /// segment belongs to another request than the bio's.
    pub(crate) fn add(&mut self, seg: &Segment<'_>) -> bool {
        if seg.request() != self.owner {
            return false;
        }
        let bv = seg.raw();
        // SAFETY: We own the unsubmitted bio; the page belongs to its owner
        // request, which outlives the bio (see `Fanout::submit`).
        let added = unsafe {
            bindings::bio_add_page(self.bio.as_ptr(), bv.bv_page, bv.bv_len, bv.bv_offset)
        };
        added == bv.bv_len as i32
    }

    pub(super) fn owner(&self) -> *mut bindings::request {
        self.owner
    }

    pub(super) fn into_raw(self) -> *mut bindings::bio {
        let bio = self.bio.as_ptr();
        core::mem::forget(self);
        bio
    }
}

impl Drop for Bio {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the bio is ours and was never
        // submitted.
        unsafe { bindings::bio_put(self.bio.as_ptr()) };
    }
}
