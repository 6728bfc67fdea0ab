// SPDX-License-Identifier: GPL-2.0

//! Host requests: their position, length, operation and data segments, and
//! their completion once every member bio they fanned out to has ended.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use super::bdev::Bdev;
use super::bio::Bio;
use super::bio::BioOp;
use super::bio::BioSet;
use super::disk::Operations;
use super::ffi;
use super::Status;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Full;
use kernel::sync::atomic::Relaxed;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Read data.
    Read,
    /// Write data.
    Write,
    /// Make everything written before durable.
    Flush,
    /// Forget the data of a range (`REQ_OP_DISCARD`).
    Discard,
    /// Make a range read as zeros (`REQ_OP_WRITE_ZEROES`).
    WriteZeroes,
    /// Any other operation, by its `REQ_OP_*` number.
    Other(u32),
}

/// Per-request driver data, kept in the tag set's command area.
///
/// `pending` counts the member bios still in flight plus one reference held
/// by whoever is still submitting; `status` keeps the first error seen;
/// `cookie` is the driver's, handed back when the request completes.
#[repr(C)]
pub(super) struct Pdu {
    pending: Atomic<u32>,
    status: Atomic<u32>,
    cookie: Atomic<u32>,
}

/// A host request owned by the driver, which must end it exactly once.
///
/// # Invariants
///
/// - `rq` points to a started request of a queue whose driver is `T`, and
///   this value is the only handle through which it may be ended.
/// - The request's command area holds a [`Pdu`].
pub(crate) struct Request<T: Operations> {
    rq: NonNull<bindings::request>,
    _t: PhantomData<T>,
}

// SAFETY: A started request may be processed and ended from any context.
unsafe impl<T: Operations> Send for Request<T> {}

impl<T: Operations> Request<T> {
    /// Takes ownership of a request handed to `queue_rq`.
    ///
    /// # Safety
    ///
    /// `rq` must be a started request of a tag set built by
    /// [`super::disk::TagSet`] for `T`, not owned by anybody else.
    pub(super) unsafe fn from_raw(rq: *mut bindings::request) -> Option<Self> {
        let rq = NonNull::new(rq)?;
        // SAFETY: The tag set reserved a `Pdu` sized command area for every
        // request; nothing else uses it while the request is ours.
        unsafe {
            let pdu = bindings::blk_mq_rq_to_pdu(rq.as_ptr()).cast::<Pdu>();
            pdu.write(Pdu {
                pending: Atomic::new(1),
                status: Atomic::new(0),
                cookie: Atomic::new(0),
            });
        }
        // INVARIANT: Per the safety contract, the request is ours and its
        // command area now holds an initialised `Pdu`.
        Some(Self {
            rq,
            _t: PhantomData,
        })
    }

    fn raw(&self) -> *mut bindings::request {
        self.rq.as_ptr()
    }

    fn cmd_flags(&self) -> u32 {
        // SAFETY: By the type invariant the request is valid.
        unsafe { (*self.raw()).cmd_flags }
    }

    /// The operation the request asks for.
    pub(crate) fn op(&self) -> Op {
        let op = self.cmd_flags() & super::REQ_OP_MASK;
        match op {
            bindings::req_op_REQ_OP_READ => Op::Read,
            bindings::req_op_REQ_OP_WRITE => Op::Write,
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            other => Op::Other(other),
        }
    }

    /// Whether the data must be durable when the request completes.
    pub(crate) fn is_fua(&self) -> bool {
        self.cmd_flags() & super::REQ_FUA != 0
    }

    /// Turns the request into a fan-out that ends it when the last member
    /// bio completes and the fan-out itself is dropped.
    pub(crate) fn fan_out(self) -> Fanout<T> {
        let rq = self.rq;
        core::mem::forget(self);
        // INVARIANT: The request's `Pdu` starts with `pending == 1`, which is
        // the reference this fan-out owns.
        Fanout {
            rq,
            _t: PhantomData,
        }
    }
}

impl<T: Operations> Drop for Request<T> {
    fn drop(&mut self) {
        // A request must never be leaked: that would hang its submitter.
        kernel::pr_err!("request dropped without being ended\n");
        // SAFETY: By the type invariant we own the request and end it once.
        unsafe {
            bindings::blk_mq_end_request(
                self.raw(),
                Status::from_error(kernel::error::code::EIO).raw(),
            )
        };
    }
}

fn zeroed_iter() -> bindings::bvec_iter {
    bindings::bvec_iter {
        bi_sector: 0,
        bi_size: 0,
        bi_idx: 0,
        bi_bvec_done: 0,
    }
}

/// Iterates the data of `rq`.
///
/// # Safety
///
/// `rq` is a live request that is not ended while the iterator exists.
unsafe fn segments_of<'a>(rq: *mut bindings::request) -> Segments<'a> {
    // SAFETY: Per the safety contract the request and its bio chain are live
    // and unchanged while we walk them.
    let bio = unsafe { (*rq).bio };
    Segments {
        rq,
        bio,
        // SAFETY: `bio` is either null or a valid bio of the request.
        iter: unsafe { bio.as_ref() }.map_or(zeroed_iter(), |b| b.bi_iter),
        _rq: PhantomData,
    }
}

/// A single-page piece of a request's data.
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a> {
    bv: bindings::bio_vec,
    rq: *mut bindings::request,
    _rq: PhantomData<&'a ()>,
}

impl<'a> Segment<'a> {
    /// Length in bytes.
    pub(crate) fn len(&self) -> u32 {
        self.bv.bv_len
    }

    /// The part of this segment from `offset` on, `len` bytes long.
    pub(crate) fn slice(&self, offset: u32, len: u32) -> Option<Segment<'a>> {
        let end = offset.checked_add(len)?;
        if end > self.bv.bv_len {
            return None;
        }
        let mut bv = self.bv;
        bv.bv_offset = bv.bv_offset.checked_add(offset)?;
        bv.bv_len = len;
        Some(Segment {
            bv,
            rq: self.rq,
            _rq: PhantomData,
        })
    }

    pub(super) fn raw(&self) -> &bindings::bio_vec {
        &self.bv
    }

    /// Runs `f` on the segment's bytes, mapped.
    ///
    /// # Safety
    ///
    /// `f` may only write to them if the request is a read.
    unsafe fn with_mapped<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let bv = &self.bv;
        // SAFETY: The page belongs to the live request the segment borrows
        // from; mapping it has no other effect.
        let base = unsafe { ffi::stria_kmap_local_page(bv.bv_page) };
        // SAFETY: A segment lies within one page: `bv_offset + bv_len` is at
        // most a page, all of it mapped at `base` until it is unmapped below;
        // nothing else accesses it meanwhile (the request is ours).
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(
                base.cast::<u8>().add(bv.bv_offset as usize),
                bv.bv_len as usize,
            )
        };
        let r = f(bytes);
        // SAFETY: Unmaps what was mapped above, in reverse order of mapping.
        unsafe { ffi::stria_kunmap_local(base) };
        r
    }

    /// Copies the segment's bytes into `dst`, which must be exactly as
    /// long; returns `false` otherwise.
    pub(crate) fn copy_to(&self, dst: &mut [u8]) -> bool {
        if dst.len() != self.bv.bv_len as usize {
            return false;
        }
        // SAFETY: Only reads the request's bytes.
        unsafe { self.with_mapped(|b| dst.copy_from_slice(b)) };
        true
    }

    /// Whether the data flows into the request's pages (a read).
    fn fills_pages(&self) -> bool {
        // SAFETY: The request is live while the segment borrows it.
        let flags = unsafe { (*self.rq).cmd_flags };
        flags & super::REQ_OP_MASK == bindings::req_op_REQ_OP_READ
    }

    /// Fills the segment from `src`, which must be exactly as long; returns
    /// `false` otherwise or when the request is not a read (its pages hold
    /// the submitter's data and must not change).
    pub(crate) fn copy_from(&self, src: &[u8]) -> bool {
        if src.len() != self.bv.bv_len as usize || !self.fills_pages() {
            return false;
        }
        // SAFETY: Writes only to the pages of a read request, whose data we
        // produce.
        unsafe { self.with_mapped(|b| b.copy_from_slice(src)) };
        true
    }

    /// Fills the segment with zeros; `false` when the request is not a read.
    pub(crate) fn zero(&self) -> bool {
        if !self.fills_pages() {
            return false;
        }
        let mut bv = self.bv;
        // SAFETY: As in `copy_from`.
        unsafe { ffi::stria_memzero_bvec(&mut bv) };
        true
    }

    /// The request whose page this is.
    pub(super) fn request(&self) -> *mut bindings::request {
        self.rq
    }
}

/// Iterator over the data segments of a request (`rq_for_each_segment`).
pub(crate) struct Segments<'a> {
    rq: *mut bindings::request,
    bio: *mut bindings::bio,
    iter: bindings::bvec_iter,
    _rq: PhantomData<&'a ()>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        loop {
            if self.bio.is_null() {
                return None;
            }
            if self.iter.bi_size == 0 {
                // SAFETY: `bio` is a valid bio of the request; its successor
                // is another one or null.
                self.bio = unsafe { (*self.bio).bi_next };
                // SAFETY: As above.
                self.iter = unsafe { self.bio.as_ref() }.map_or(zeroed_iter(), |b| b.bi_iter);
                continue;
            }
            // SAFETY: `bio` is valid and `iter` lies within it.
            let bv = unsafe { ffi::stria_bio_iter_iovec(self.bio, self.iter) };
            // SAFETY: `bv.bv_len` is the length of the current segment, which
            // is what `bio_advance_iter_single` accepts.
            unsafe { ffi::stria_bio_advance_iter_single(self.bio, &mut self.iter, bv.bv_len) };
            return Some(Segment {
                bv,
                rq: self.rq,
                _rq: PhantomData,
            });
        }
    }
}

/// A request whose work is spread over member bios.
///
/// The request ends when the fan-out has been dropped and every bio submitted
/// through it has completed, with the first error any of them saw.
///
/// # Invariants
///
/// `rq` is a request of a `T` queue whose [`Pdu`] counts one reference owned
/// by this value.
pub(crate) struct Fanout<T: Operations> {
    rq: NonNull<bindings::request>,
    _t: PhantomData<T>,
}

// SAFETY: See `Request`.
unsafe impl<T: Operations> Send for Fanout<T> {}

impl<T: Operations> Fanout<T> {
    fn pdu(&self) -> &Pdu {
        // SAFETY: By the type invariant the request is live (we hold a
        // reference) and its command area holds a `Pdu`.
        unsafe { &*bindings::blk_mq_rq_to_pdu(self.rq.as_ptr()).cast::<Pdu>() }
    }

    /// First sector (512 bytes) of the request.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: By the type invariant the request is live.
        unsafe { (*self.rq.as_ptr()).__sector }
    }

    /// Length of the request's data in bytes.
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: By the type invariant the request is live.
        unsafe { (*self.rq.as_ptr()).__data_len }
    }

    /// The request's data, one page-sized piece at a time, in order.
    pub(crate) fn segments(&self) -> Segments<'_> {
        // SAFETY: By the type invariant the request is live; it is not ended
        // while this fan-out, which the segments borrow, exists.
        unsafe { segments_of(self.rq.as_ptr()) }
    }

    /// Copies `dst.len()` bytes of the request's data, from byte `offset` of
    /// the request on, into `dst`; `false` if the request is shorter.
    pub(crate) fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        let mut pos = 0usize;
        let mut done = 0usize;
        for seg in self.segments() {
            if done == dst.len() {
                break;
            }
            let len = seg.len() as usize;
            let end = pos + len;
            let want = offset + done;
            if want < end {
                let skip = want - pos;
                let n = (len - skip).min(dst.len() - done);
                let (Some(piece), Some(d)) = (
                    seg.slice(skip as u32, n as u32),
                    dst.get_mut(done..done + n),
                ) else {
                    return false;
                };
                if !piece.copy_to(d) {
                    return false;
                }
                done += n;
            }
            pos = end;
        }
        done == dst.len()
    }

    /// Keeps `cookie` with the request, for [`Operations::completed`].
    pub(crate) fn set_cookie(&self, cookie: u32) {
        self.pdu().cookie.store(cookie, Relaxed);
    }

    /// Records a failure; the request will end with the first one recorded.
    pub(crate) fn fail(&self, status: Status) {
        record(self.pdu(), status.raw());
    }

    /// A bio for `bdev` from `set`, owned by this request: only this
    /// request's segments can be added to it, and only this fan-out can
    /// submit it.
    ///
    /// `set` and `bdev` must outlive the request; both belong to the queue's
    /// driver data in practice, which outlives every request of the queue.
    ///
    /// It may sleep: never call it in `queue_rq`.
    pub(crate) fn new_bio(
        &self,
        set: &BioSet,
        bdev: &Bdev,
        op: BioOp,
        nr_vecs: u16,
    ) -> kernel::error::Result<Bio> {
        Bio::new(set, bdev, op, nr_vecs, self.rq.as_ptr())
    }

    /// Submits `bio`; the request stays alive until it completes.
    ///
    /// It may sleep (in the member's queue): never call it in `queue_rq`.
    /// A bio made for another request is refused (and fails this one):
    /// the pages it holds are only pinned by their own request.
    pub(crate) fn submit(&self, bio: Bio) {
        if bio.owner() != self.rq.as_ptr() {
            kernel::pr_err!("bio submitted through another request's fan-out\n");
            drop(bio);
            self.fail(Status::from_error(kernel::error::code::EIO));
            return;
        }
        self.pdu().pending.add(1, Relaxed);
        let raw = bio.into_raw();
        // SAFETY: `raw` is a fully built bio that we own; the end_io handler
        // receives the reference to the request taken above.
        unsafe {
            (*raw).bi_end_io = Some(end_io::<T>);
            (*raw).bi_private = self.rq.as_ptr().cast();
            bindings::submit_bio(raw);
        }
    }
}

impl<T: Operations> Drop for Fanout<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one reference to the request.
        unsafe { put::<T>(self.rq.as_ptr()) };
    }
}

fn record(pdu: &Pdu, status: u8) {
    if status != 0 {
        let _ = pdu.status.cmpxchg(0, u32::from(status), Full);
    }
}

/// Drops one reference to a fanned-out request, ending it on the last.
///
/// # Safety
///
/// `rq` is a request of a `T` queue with a [`Pdu`], and the caller owns one
/// of the references counted in it.
unsafe fn put<T: Operations>(rq: *mut bindings::request) {
    // SAFETY: Per the safety contract the request and its `Pdu` are live.
    let pdu = unsafe { &*bindings::blk_mq_rq_to_pdu(rq).cast::<Pdu>() };
    if pdu.pending.fetch_sub(1, Full) != 1 {
        return;
    }
    // `blk_status_t` values are below 256, and only those are ever stored.
    let status = pdu.status.load(Relaxed) as u8;
    // SAFETY: The request belongs to a `T` queue, whose queue data is a `T`.
    let data = unsafe { super::disk::queue_data::<T>((*rq).q) };
    // The last reference was dropped with full ordering: the cookie stored
    // before any bio was submitted is seen.
    data.completed(Status(status), pdu.cookie.load(Relaxed));
    // SAFETY: That was the last reference; nobody touches the request again.
    unsafe { bindings::blk_mq_end_request(rq, status) };
}

/// Completion of a member bio submitted through a [`Fanout`].
///
/// # Safety
///
/// Called by the block layer for a bio submitted by [`Fanout::submit`].
unsafe extern "C" fn end_io<T: Operations>(bio: *mut bindings::bio) {
    // SAFETY: The bio is ours and done; `bi_private` is its request.
    let (rq, status) = unsafe {
        (
            (*bio).bi_private.cast::<bindings::request>(),
            (*bio).bi_status,
        )
    };
    // SAFETY: Nothing uses the bio after its completion.
    unsafe { bindings::bio_put(bio) };
    // SAFETY: The request is live: this bio holds one of its references.
    record(
        unsafe { &*bindings::blk_mq_rq_to_pdu(rq).cast::<Pdu>() },
        status,
    );
    // SAFETY: This bio's reference is handed over to `put`.
    unsafe { put::<T>(rq) };
}
