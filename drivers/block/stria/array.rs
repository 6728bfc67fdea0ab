// SPDX-License-Identifier: GPL-2.0

//! An assembled array: its members, volumes, writer and volume table.

use crate::blk::bio::BioSet;
use crate::blk::disk::StackOn;
use crate::blk::iobuf::BatchDone;
use crate::blk::request::Fanout;
use crate::blk::wq;
use crate::blk::wq::Kind;
use crate::blk::Status;
use crate::format::header::StripeLocation;
use crate::format::header::MAX_ALSO;
use crate::format::superblock::feature;
use crate::format::superblock::volume_flags;
use crate::format::superblock::CopyMeta;
use crate::format::superblock::Layout;
use crate::format::superblock::VolumeEntry;
use crate::format::superblock::MAX_VOLUMES;
use crate::gc;
use crate::map::diverge;
use crate::map::diverge::Divergence;
use crate::map::Directory;
use crate::map::Form;
use crate::map::Map;
use crate::members;
use crate::members::Member;
use crate::rebuild;
use crate::uapi;
use crate::volume::VolumeDev;
use crate::writer::Io;
use crate::writer::Owner;
use crate::writer::Policy;
use crate::writer::Source;
use crate::writer::Volume;
use crate::writer::Writer;
use crate::writer::MAX_FAMILY;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::atomic::Acquire;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::atomic::Release;
use kernel::sync::Arc;
use kernel::sync::Mutex;
use kernel::sync::SpinLock;
use kernel::workqueue::Work;
use kernel::workqueue::WorkItem;

/// Block size of the volume.
pub(crate) const BLOCK_BYTES: u32 = crate::format::geometry::BLOCK_SIZE as u32;
/// Largest host request, in sectors (1 MiB).
pub(crate) const MAX_REQUEST_SECTORS: u32 = 2048;

/// I/O counters reported by STATUS, for all volumes together.
pub(crate) struct Counters {
    /// Read requests.
    pub(crate) reads: Atomic<u64>,
    /// Write requests.
    pub(crate) writes: Atomic<u64>,
    /// Flush requests.
    pub(crate) flushes: Atomic<u64>,
    /// Requests failed.
    pub(crate) errors: Atomic<u64>,
}

/// The volume table as the superblocks record it.
pub(crate) struct Table {
    /// Volumes, at most [`MAX_VOLUMES`].
    pub(crate) volumes: KVec<VolumeEntry>,
    /// Id the next volume gets.
    pub(crate) next_id: u32,
    generation: u64,
    log: Option<(StripeLocation, u64)>,
    /// Incompat features to add to the superblocks (those they have stay).
    incompat: u64,
}

impl Table {
    /// Adds volume `e`, whose id is the next one.
    fn add(&mut self, e: VolumeEntry) -> Result {
        if self.volumes.len() >= MAX_VOLUMES {
            pr_err!("the volume table is full\n");
            return Err(ENOSPC);
        }
        self.volumes.push(e, GFP_KERNEL)?;
        self.next_id = self.next_id.max(e.id.checked_add(1).ok_or(ENOSPC)?);
        Ok(())
    }
}

/// Requests of one volume's disk that can wait at once: one per tag.
const TAGS_PER_DISK: usize = crate::blk::disk::QUEUE_DEPTH as usize;

/// A request `queue_rq` cannot finish, handed to a worker.
///
/// `queue_rq` must not sleep, and it may run inside the submission of a bio
/// to the volume, where member bios are only queued until it returns:
/// waiting there for a stripe buffer or a flush would wait for itself.
pub(crate) enum Deferred {
    /// A write that found no free stripe buffer after `done` blocks.
    Write {
        /// The request.
        fan: Fanout<VolumeDev>,
        /// Its volume.
        vol: Arc<Volume>,
        /// First block.
        lba: u64,
        /// Blocks.
        n: u64,
        /// Blocks already packed.
        done: u64,
        /// Whether it must be durable on completion.
        fua: bool,
        /// A discard or write-zeroes: trim records, no data.
        trim: bool,
    },
    /// A flush, or a FUA write already packed.
    Flush {
        /// The request.
        fan: Fanout<VolumeDev>,
    },
    /// A read: it submits member bios, which may sleep.
    Read {
        /// The request.
        fan: Fanout<VolumeDev>,
        /// Its volume.
        vol: Arc<Volume>,
    },
}

/// An array of members and the volumes it serves.
#[pin_data]
pub(crate) struct Array {
    identity: members::Identity,
    members: KVec<Member>,
    /// Volumes being served, for the writer.
    #[pin]
    volumes: SpinLock<KVec<Arc<Volume>>>,
    /// Serialises changes of the volume table and superblock writes.
    #[pin]
    table: Mutex<KBox<Table>>,
    #[pin]
    writer: Writer,
    #[pin]
    bioset: BioSet,
    /// Finishes written stripes.
    #[pin]
    work: Work<Array, 0>,
    /// Requests handed to the deferral worker, in order.
    #[pin]
    deferred: SpinLock<KVec<Deferred>>,
    /// Serves deferred requests.
    #[pin]
    defer_work: Work<Array, 1>,
    /// Writes the stripes `queue_rq` filled.
    #[pin]
    stripe_work: Work<Array, 2>,
    /// Reads, which submit member bios and so cannot be served in
    /// `queue_rq`; apart from `deferred`, where a read would wait behind
    /// writes waiting for a stripe buffer.
    #[pin]
    reads: SpinLock<KVec<Deferred>>,
    #[pin]
    read_work: Work<Array, 3>,
    /// Free-space collection in the background.
    #[pin]
    gc_work: Work<Array, 4>,
    /// One collection at a time: background or on demand.
    #[pin]
    gc_lock: Mutex<()>,

    /// Work items queued or running, and collections on demand: each
    /// holds a reference to the array, and with it the members.
    busy: Arc<Busy>,
    /// Disks of the array's volumes. Each has a tag set of its own, so as
    /// many requests can wait for a worker as all of them have tags: room
    /// for that many is made in `deferred` and `reads` before a disk is
    /// added, and a push under their locks never allocates or fails.
    /// Changed only by one caller at a time (see [`Self::room_for_disk`]).
    disks: Atomic<usize>,
    /// Background collection runs queued and not yet ended.
    gc_queued: Atomic<u32>,
    /// The array is being stopped: no more background collection.
    stopping: Atomic<bool>,
    counters: Counters,
}

kernel::impl_has_work! {
    impl HasWork<Self, 0> for Array { self.work }
    impl HasWork<Self, 1> for Array { self.defer_work }
    impl HasWork<Self, 2> for Array { self.stripe_work }
    impl HasWork<Self, 3> for Array { self.read_work }
    impl HasWork<Self, 4> for Array { self.gc_work }
}

impl WorkItem<0> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        // A snapshot: volumes dropped while the list is locked would free
        // their maps there, which may sleep. Taken again when a copy made
        // meanwhile is missing from it.
        loop {
            let copies = this.writer.copies();
            match this.volume_list() {
                Ok(vols) => {
                    if !this.writer.complete(&this.io(), &vols, copies) {
                        continue;
                    }
                    if gc::wanted(&this) {
                        Self::need_space(&this);
                    }
                }
                Err(_) => {
                    pr_err!("out of memory finishing written stripes: retrying\n");
                    Self::kick(&this, |a| wq::queue(Kind::Complete).enqueue::<_, 0>(a));
                }
            }
            break;
        }
        Busy::finished(this);
    }
}

impl WorkItem<1> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.serve_all(&this.deferred);
        Busy::finished(this);
    }
}

impl WorkItem<2> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        crate::blk::noio(|| this.writer.write_ready(&this, &this.io()));
        Busy::finished(this);
    }
}

impl WorkItem<3> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.serve_all(&this.reads);
        Busy::finished(this);
    }
}

impl WorkItem<4> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        crate::blk::noio(|| {
            let _one = this.gc_lock.lock();
            if this.stopping.load(Acquire) {
                this.writer.gc_ended(0);
            } else {
                gc::background(&this);
            }
        });
        this.gc_queued.fetch_sub(1, Release);
        Busy::finished(this);
    }
}

impl Owner for Array {
    fn stripes_ready(this: &Arc<Self>) {
        // Already queued: that run will see these stripes too.
        Self::kick(this, |a| wq::queue(Kind::Stripes).enqueue::<_, 2>(a));
    }

    fn need_space(this: &Arc<Self>) {
        if this.stopping.load(Acquire) {
            return;
        }
        // Counted before it can run; if already queued, writers wait for
        // the end of that run.
        this.gc_queued.add(1, Relaxed);
        if !Self::kick(this, |a| wq::queue(Kind::Collect).enqueue::<_, 4>(a)) {
            this.gc_queued.fetch_sub(1, Release);
        }
    }
}

impl BatchDone for Array {
    fn batch_done(this: Arc<Self>, tag: usize, status: Status) {
        this.writer.batch_ended(tag, status);
        // Already queued: that run will see this batch too.
        Self::kick(&this, |a| wq::queue(Kind::Complete).enqueue::<_, 0>(a));
    }
}

/// Work queued or running for an array, each item holding a reference to
/// it. Kept apart from the array so that an item can let go of the array
/// before it counts itself done: once the count is zero, no work item
/// holds the array, and with it the members, any more.
struct Busy(Atomic<u32>);

impl Busy {
    /// Ends the run of a work item on `array`, the item's reference to it
    /// dropped first.
    fn finished(array: Arc<Array>) {
        let busy = array.busy.clone();
        drop(array);
        busy.0.fetch_sub(1, Release);
    }
}

impl Array {
    /// Claims the members named by `paths`, checks their superblocks,
    /// rebuilds the volumes' maps from their stripes and sets up the writer.
    pub(crate) fn new(paths: &[&CStr]) -> Result<impl PinInit<Self, Error>> {
        let (members, identity) = members::assemble(paths)?;
        let mut policies = KVec::new();
        for (i, g) in identity.groups.iter().enumerate() {
            let p = Policy::from_group(i as u8, g, members.len()).inspect_err(|_| {
                pr_err!("stripe group {} has an unusable policy\n", i);
            })?;
            policies.push(p, GFP_KERNEL)?;
        }
        let mut table = KBox::new(
            Table {
                volumes: KVec::with_capacity(MAX_VOLUMES, GFP_KERNEL)?,
                next_id: identity.next_volume_id,
                generation: identity.generation,
                log: None,
                incompat: 0,
            },
            GFP_KERNEL,
        )?;
        // Room for every volume the table can hold: adding one later must
        // not allocate under the list's lock.
        let mut vols = KVec::with_capacity(MAX_VOLUMES, GFP_KERNEL)?;
        let mut ghosts = KVec::new();
        let mut sizes = KVec::new();
        for entry in identity.volumes.iter() {
            table.volumes.push(*entry, GFP_KERNEL)?;
            if entry.layout != Layout::FullPointer {
                pr_warn!("volume {}: layout not served, skipped\n", entry.id);
                continue;
            }
            // A deleted volume whose copies live on is rebuilt for them
            // only.
            if entry.flags & volume_flags::DELETING != 0 {
                ghosts.push(vols.len(), GFP_KERNEL)?;
            }
            // Every map of a copy tree is rebuilt at the largest size any
            // of them has, so that a copy made before a source shrank (or
            // after a copy grew) finds all it shared; each is cut to its
            // own size at the end.
            let family = |v: &VolumeEntry| if v.origin_id != 0 { v.origin_id } else { v.id };
            let widest = identity
                .volumes
                .iter()
                .filter(|v| family(v) == family(entry))
                .map(|v| v.size_blocks)
                .max()
                .unwrap_or(entry.size_blocks);
            sizes.push(entry.size_blocks, GFP_KERNEL)?;
            vols.push(
                Self::volume_sized(entry, widest, policies.len())?,
                GFP_KERNEL,
            )?;
        }
        let found = {
            let mut refs = KVec::with_capacity(vols.len(), GFP_KERNEL)?;
            for v in vols.iter() {
                refs.push(&**v, GFP_KERNEL)?;
            }
            let mut copies = KVec::new();
            for (child, e) in identity.volumes.iter().enumerate() {
                if e.flags & volume_flags::COPY == 0 {
                    continue;
                }
                let (Some(child), Some(parent)) = (
                    vols.iter().position(|v| v.id == e.id),
                    vols.iter().position(|v| v.id == e.parent_id),
                ) else {
                    pr_err!("copy {}: its source {} is missing\n", e.id, e.parent_id);
                    let _ = child;
                    continue;
                };
                copies.push(
                    rebuild::CopyEvent {
                        child,
                        parent,
                        at: e.copy_generation,
                        form: form_of(e.copy_meta),
                        divergence: divergence_of(e.divergence),
                    },
                    GFP_KERNEL,
                )?;
            }
            // A chunk holds a full strip of any group.
            let chunk = policies
                .iter()
                .map(|p| u64::from(p.strip_blocks) + 1)
                .max()
                .ok_or(EINVAL)?;
            rebuild::rebuild(
                &members,
                &identity.uuid,
                &refs,
                &sizes,
                &copies,
                &ghosts,
                chunk,
            )?
        };
        let mut i = 0usize;
        vols.retain(|_| {
            i += 1;
            !ghosts.contains(&(i - 1))
        });
        let writer = Writer::new(identity.uuid, policies, found.start)?;
        Ok(try_pin_init!(Self {
            identity,
            members,
            volumes <- kernel::new_spinlock!(vols),
            table <- kernel::new_mutex!(table),
            writer <- writer,
            bioset <- BioSet::new(64),
            work <- kernel::new_work!("stria_array"),
            deferred <- kernel::new_spinlock!(KVec::new()),
            defer_work <- kernel::new_work!("stria_deferred"),
            stripe_work <- kernel::new_work!("stria_stripes"),
            reads <- kernel::new_spinlock!(KVec::new()),
            read_work <- kernel::new_work!("stria_reads"),
            gc_work <- kernel::new_work!("stria_gc"),
            gc_lock <- kernel::new_mutex!(()),
            busy: Arc::new(Busy(Atomic::new(0)), GFP_KERNEL)?,
            disks: Atomic::new(0),
            gc_queued: Atomic::new(0),
            stopping: Atomic::new(false),
            counters: Counters {
                reads: Atomic::new(0),
                writes: Atomic::new(0),
                flushes: Atomic::new(0),
                errors: Atomic::new(0),
            },
        }))
    }

    /// The in-memory volume for table entry `e`.
    fn volume_of(e: &VolumeEntry, nr_groups: usize) -> Result<Arc<Volume>> {
        Self::volume_sized(e, e.size_blocks, nr_groups)
    }

    /// The same with a map of `blocks` blocks.
    fn volume_sized(e: &VolumeEntry, blocks: u64, nr_groups: usize) -> Result<Arc<Volume>> {
        if usize::from(e.group) >= nr_groups {
            pr_err!("volume {} names a missing stripe group\n", e.id);
            return Err(EINVAL);
        }
        Ok(Arc::new(
            Volume {
                id: e.id,
                family: if e.origin_id != 0 { e.origin_id } else { e.id },
                group: usize::from(e.group),
                map: KBox::pin_init(Map::new(blocks)?, GFP_KERNEL)?,
            },
            GFP_KERNEL,
        )?)
    }

    /// The volumes being served.
    pub(crate) fn volume_list(&self) -> Result<KVec<Arc<Volume>>> {
        let mut v = KVec::with_capacity(MAX_VOLUMES, GFP_KERNEL)?;
        for vol in self.volumes.lock().iter() {
            v.push_within_capacity(vol.clone()).map_err(|_| ENOMEM)?;
        }
        Ok(v)
    }

    /// Whether the array is being stopped.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Acquire)
    }

    /// The array's UUID.
    pub(crate) fn uuid(&self) -> crate::format::uuid::Uuid {
        self.identity.uuid
    }

    /// Runs free-space collection until `percent` of the pool is free (or
    /// nothing is worth collecting), ranking stripes by `pick`.
    pub(crate) fn collect(
        this: &Arc<Self>,
        percent: u64,
        pick: crate::alloc::Pick,
    ) -> Result<gc::Outcome> {
        // A stop waits for it, as for the workers.
        this.busy.0.add(1, Relaxed);
        let r = {
            let _one = this.gc_lock.lock();
            let target = gc::share(this.writer.space_stats().total, percent);
            let r = crate::blk::noio(|| gc::run(this, target, pick, None));
            this.writer.gc_ended(r.as_ref().map_or(0, |o| o.freed));
            r
        };
        this.busy.0.fetch_sub(1, Release);
        r
    }

    /// Volume `id`, if it is being served.
    pub(crate) fn find_volume(&self, id: u32) -> Option<Arc<Volume>> {
        self.volumes.lock().iter().find(|v| v.id == id).cloned()
    }

    /// A copy of the volume table.
    pub(crate) fn table(&self) -> Result<KBox<Table>> {
        let t = self.table.lock();
        self.table_copy(&t)
    }

    /// Changes the volume table with `f` and writes it to every member's
    /// superblock; the change stands only if that succeeds.
    pub(crate) fn change_table<R>(&self, f: impl FnOnce(&mut Table) -> Result<R>) -> Result<R> {
        let mut t = self.table.lock();
        let mut new = self.table_copy(&t)?;
        let r = f(&mut new)?;
        new.generation = new.generation.checked_add(1).ok_or(EINVAL)?;
        let now = crate::blk::wall_clock_seconds();
        members::write_superblocks(&self.members, |sb| {
            for (i, slot) in sb.volumes.iter_mut().enumerate() {
                *slot = new.volumes.get(i).copied();
            }
            sb.next_volume_id = new.next_id;
            // Code that knows nothing of shared blocks must not collect
            // them: it would free what a copy still reads.
            if new
                .volumes
                .iter()
                .any(|v| v.flags & volume_flags::COPY != 0)
            {
                sb.ro_compat |= feature::RO_COMPAT_SHARED_BLOCKS;
            }
            sb.incompat |= new.incompat;
            sb.generation = new.generation;
            sb.mtime = now;
            if let Some((head, seq)) = new.log {
                sb.log_head = Some(head);
                sb.log_seq = seq;
            }
        })?;
        *t = new;
        Ok(r)
    }

    fn table_copy(&self, t: &Table) -> Result<KBox<Table>> {
        let mut volumes = KVec::with_capacity(MAX_VOLUMES, GFP_KERNEL)?;
        for v in t.volumes.iter() {
            volumes.push(*v, GFP_KERNEL)?;
        }
        Ok(KBox::new(
            Table {
                volumes,
                next_id: t.next_id,
                generation: t.generation,
                log: t.log,
                incompat: t.incompat,
            },
            GFP_KERNEL,
        )?)
    }

    /// Adds a volume described by `e` to the table and starts serving it.
    pub(crate) fn add_volume(&self, e: VolumeEntry) -> Result<Arc<Volume>> {
        let vol = Self::volume_of(&e, self.identity.groups.len())?;
        self.change_table(|t| t.add(e))?;
        self.volumes
            .lock()
            .push_within_capacity(vol.clone())
            .map_err(|_| ENOMEM)?;
        Ok(vol)
    }

    /// Removes volume `id` from the table; its stripes' pieces are ignored
    /// from now on (ids are never reused).
    pub(crate) fn remove_volume(&self, id: u32) -> Result {
        self.change_table(|t| {
            let at = t.volumes.iter().position(|v| v.id == id).ok_or(ENOENT)?;
            let has_copies = |t: &Table, id: u32| t.volumes.iter().any(|v| v.parent_id == id);
            if has_copies(t, id) {
                // Its copies still read what it held when they were made.
                let e = t.volumes.get_mut(at).ok_or(ENOENT)?;
                e.flags |= volume_flags::DELETING;
                return Ok(());
            }
            let mut parent = t.volumes.get(at).map_or(0, |v| v.parent_id);
            t.volumes.retain(|v| v.id != id);
            // A deleted source kept only for its copies goes with the last.
            while let Some(p) = t
                .volumes
                .iter()
                .position(|v| v.id == parent && v.flags & volume_flags::DELETING != 0)
            {
                if has_copies(t, parent) {
                    break;
                }
                let next = t.volumes.get(p).map_or(0, |v| v.parent_id);
                t.volumes.retain(|v| v.id != parent);
                parent = next;
            }
            Ok(())
        })?;
        if let Some(v) = self.unserve(id) {
            // Its pieces are ignored from now on, also at assembly.
            self.writer.forget(&v);
        }
        // Divergence maps it shared with its source and copies.
        if let Ok(l) = self.volume_list() {
            for v in l.iter() {
                v.map.prune_tracks();
            }
        }
        Ok(())
    }

    /// Stops serving volume `id`: taken out under the list's lock, to be
    /// dropped (maybe freeing the map, which may sleep) outside it.
    fn unserve(&self, id: u32) -> Option<Arc<Volume>> {
        let mut l = self.volumes.lock();
        let at = l.iter().position(|v| v.id == id);
        at.and_then(|i| l.remove(i).ok())
    }

    /// Changes volume `vol`'s size to `blocks`. Blocks cut off are trimmed
    /// in the log first (durably), so that growing again shows zeros, also
    /// after re-assembly.
    pub(crate) fn resize_volume(this: &Arc<Self>, vol: &Volume, blocks: u64) -> Result {
        let old = vol.map.size_blocks();
        // Made first: once the table says the new size, the map must follow.
        let dir = Directory::new(blocks)?;
        if blocks < old {
            let io = this.io();
            this.writer
                .prepare(vol, blocks, old - blocks, false, GFP_KERNEL)?;
            this.writer.write::<Self, VolumeDev>(
                this,
                &io,
                vol,
                blocks,
                old - blocks,
                0,
                Source::Trim,
                true,
            )?;
            this.writer.flush(this, &io)?;
        }
        this.change_table(|t| {
            let e = t
                .volumes
                .iter_mut()
                .find(|v| v.id == vol.id)
                .ok_or(ENOENT)?;
            e.size_blocks = blocks;
            Ok(())
        })?;
        this.writer.resize(vol, dir, blocks)
    }

    /// The family (see [`Self::family`]) of the first of `ids` that the
    /// table still knows: a piece stands for all of them, and some may be
    /// deleted.
    pub(crate) fn family_any(&self, ids: impl Iterator<Item = u32>) -> Result<KVec<Arc<Volume>>> {
        for id in ids {
            let f = self.family(id)?;
            if !f.is_empty() {
                return Ok(f);
            }
        }
        Ok(KVec::new())
    }

    /// The volumes in service of the copy tree volume `id` belongs to
    /// (also when `id` itself was deleted), `id` first if it is served.
    pub(crate) fn family(&self, id: u32) -> Result<KVec<Arc<Volume>>> {
        let served = self.volume_list()?;
        let fam = match served.iter().find(|v| v.id == id) {
            Some(v) => v.family,
            None => {
                let t = self.table.lock();
                match t.volumes.iter().find(|v| v.id == id) {
                    Some(e) if e.origin_id != 0 => e.origin_id,
                    Some(e) => e.id,
                    None => return Ok(KVec::new()),
                }
            }
        };
        let mut out = KVec::with_capacity(MAX_FAMILY, GFP_KERNEL)?;
        let own = served.iter().filter(|v| v.id == id);
        let others = served.iter().filter(|v| v.id != id && v.family == fam);
        for v in Iterator::chain(own, others).take(MAX_FAMILY) {
            out.push(v.clone(), GFP_KERNEL)?;
        }
        Ok(out)
    }

    /// Blocks that volume `id`, in service, alone points at: what deleting
    /// it would give back.
    pub(crate) fn unique_blocks(&self, id: u32) -> Result<u64> {
        let fam = self.family(id)?;
        let Some((own, rest)) = fam.split_first().filter(|(v, _)| v.id == id) else {
            return Ok(0);
        };
        let mut others = KVec::with_capacity(rest.len(), GFP_KERNEL)?;
        for v in rest {
            others.push(&*v.map, GFP_KERNEL)?;
        }
        own.map.unique_among(&others)
    }

    /// Makes volume `e` an instant copy of `src`, whose queue the caller
    /// has frozen: at one point in the log, the copy's map points at every
    /// directory page of the source's; the point and the new table entry
    /// are on stable storage when it returns. Time and memory do not
    /// depend on what the source holds, only on its size (a pointer per
    /// GiB).
    pub(crate) fn copy_volume(
        this: &Arc<Self>,
        src: &Arc<Volume>,
        e: VolumeEntry,
        track: Option<Arc<Divergence>>,
    ) -> Result<Arc<Volume>> {
        let e = VolumeEntry {
            size_blocks: src.map.size_blocks(),
            ..e
        };
        let vol = Self::volume_of(&e, this.identity.groups.len())?;
        // More volumes in service than a header's `also` table names:
        // collection may write list entries for them.
        let wide = this.family(src.id)?.len() > MAX_ALSO;
        // The id is taken for good before anything names it: collection
        // may write pieces for the copy as soon as it is served.
        this.change_table(|t| {
            if t.next_id != e.id {
                return Err(EINVAL);
            }
            t.next_id = e.id.checked_add(1).ok_or(ENOSPC)?;
            if wide {
                t.incompat |= feature::INCOMPAT_VOLUME_LISTS;
            }
            Ok(())
        })?;
        // Room for the divergence map's source side, `e.divergence`'s, in
        // the source's list: nothing is allocated at the copy point.
        if track.is_some() {
            src.map.reserve_track()?;
        }
        let io = this.io();
        // One lock order for all: the writer's state, then the list.
        let point = this.writer.flush_with(this, &io, true, || {
            vol.map
                .share_from(&src.map, form_of(e.copy_meta), track.as_ref())?;
            this.volumes
                .lock()
                .push_within_capacity(vol.clone())
                .map_err(|_| ENOSPC)
        });
        let mut rec = e;
        let recorded = match point {
            Ok(at) => {
                rec.copy_generation = at;
                this.change_table(|t| t.add(rec))
            }
            Err(err) => Err(err),
        };
        if let Err(err) = recorded {
            drop(this.unserve(e.id));
            this.writer.forget(&vol);
            if let Some(t) = &track {
                t.kill();
            }
            src.map.prune_tracks();
            return Err(err);
        }
        Ok(vol)
    }

    /// The array's stripe groups.
    pub(crate) fn nr_groups(&self) -> usize {
        self.identity.groups.len()
    }

    /// The writer.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Member `i`.
    pub(crate) fn member(&self, i: u8) -> Option<&Member> {
        self.members.get(usize::from(i))
    }

    /// The bio set for member bios.
    pub(crate) fn bioset(&self) -> &BioSet {
        &self.bioset
    }

    /// The I/O counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The members and bio set, for the writer.
    pub(crate) fn io(&self) -> Io<'_> {
        Io {
            members: &self.members,
            bioset: &self.bioset,
        }
    }

    /// Preferred I/O size: a block.
    pub(crate) fn io_min(&self) -> u32 {
        BLOCK_BYTES
    }

    /// Optimal I/O size: a megabyte, the largest request.
    pub(crate) fn io_opt(&self) -> u32 {
        MAX_REQUEST_SECTORS * 512
    }

    /// The members with the offset of their data areas, for the disk's
    /// queue limits.
    pub(crate) fn stack_on(&self) -> Result<KVec<StackOn<'_>>> {
        let mut v = KVec::with_capacity(self.members.len(), GFP_KERNEL)?;
        for m in self.members.iter() {
            v.push(
                StackOn {
                    bdev: &m.bdev,
                    offset_sectors: m.data_start / 512,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(v)
    }

    /// Writes out everything buffered and flushes the members; called once
    /// the volumes' disks are gone.
    pub(crate) fn shut_down(this: &Arc<Self>) {
        this.stopping.store(true, Release);
        let flushed = this.writer.flush(this, &this.io());
        if let Err(e) = &flushed {
            pr_err!(
                "cannot write out buffered data at stop: error {}\n",
                e.to_errno()
            );
        }
        // Work items queued or running hold the array, and so the members:
        // let them end, so that the members are free when the stop is
        // reported, also after a failed flush.
        while this.busy.0.load(Acquire) > 0 || this.gc_queued.load(Acquire) > 0 {
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
        }
        if flushed.is_err() {
            return;
        }
        // A clean stop: the superblocks vouch for every stripe, so the next
        // assembly need not check any stripe's data.
        if let Some(log) = this.writer.log_head() {
            if let Err(e) = this.change_table(|t| {
                t.log = Some(log);
                Ok(())
            }) {
                pr_err!("cannot record the end of the log: error {}\n", e.to_errno());
            }
        }
    }

    /// Fills a STATUS answer; `main` is the volume /dev/striaN serves (id
    /// 1), if it exists, and `open_count` how often the volumes are open.
    pub(crate) fn status(&self, index: u32, open_count: u32) -> uapi::Status {
        let main = self.find_volume(1);
        let (mut mapped, mut bytes) = (0, 0);
        for v in self.volume_list().unwrap_or_default().iter() {
            let m = v.map.stats();
            mapped += m.mapped;
            bytes += m.leaf_bytes + m.dir_bytes;
        }
        let strip = self.identity.groups.first().map_or(0, |g| g.strip_blocks);
        let space = self.writer.space_stats();
        let mut st = uapi::Status {
            index,
            nr_members: self.members.len() as u32,
            layout: uapi::LAYOUT_LOG,
            chunk_sectors: strip * (BLOCK_BYTES / 512),
            open_count,
            capacity_sectors: main
                .map_or(0, |v| v.map.size_blocks() * u64::from(BLOCK_BYTES / 512)),
            reads: self.counters.reads.load(Relaxed),
            writes: self.counters.writes.load(Relaxed),
            flushes: self.counters.flushes.load(Relaxed),
            errors: self.counters.errors.load(Relaxed),
            array_uuid: self.identity.uuid.0,
            map_blocks: mapped,
            map_bytes: bytes,
            stripes: self.writer.stats.stripes.load(Relaxed),
            partial_stripes: self.writer.stats.partial.load(Relaxed),
            pool_blocks: space.total,
            free_blocks: space.free,
            live_blocks: space.live,
            reclaimable_blocks: space.reclaimable,
            dying_blocks: space.dying,
            raid_stripes: space.stripes,
            gc_stripes: self.writer.stats.collected.load(Relaxed),
            gc_moved_blocks: self.writer.stats.moved_blocks.load(Relaxed),
            host_blocks: self.writer.stats.host_blocks.load(Relaxed),
            member_blocks: self.writer.stats.member_blocks.load(Relaxed),
            ..uapi::Status::default()
        };
        for (d, s) in st.name.iter_mut().zip(self.identity.name.iter()) {
            *d = *s;
        }
        for (i, (info, m)) in st.members.iter_mut().zip(self.members.iter()).enumerate() {
            let (major, minor) = m.bdev.dev();
            *info = uapi::MemberInfo {
                major,
                minor,
                sectors: m.bdev.nr_sectors(),
                free_sectors: self.writer.free_blocks(i) * u64::from(BLOCK_BYTES / 512),
                ..uapi::MemberInfo::default()
            };
        }
        st
    }

    /// Hands `d` to a worker: reads to the read worker, the rest to the
    /// deferral worker.
    pub(crate) fn defer(this: &Arc<Self>, d: Deferred) {
        let is_read = matches!(d, Deferred::Read { .. });
        let list = if is_read { &this.reads } else { &this.deferred };
        if let Err(kernel::alloc::kvec::PushError(d)) = list.lock().push_within_capacity(d) {
            // Cannot happen: no disk exists before room for its tags.
            pr_err!("too many deferred requests\n");
            let (Deferred::Write { fan, .. }
            | Deferred::Flush { fan }
            | Deferred::Read { fan, .. }) = d;
            fan.fail(Status::from_error(EIO));
            return;
        }
        // Already queued: that run will see this request too.
        if is_read {
            Self::kick(this, |a| wq::queue(Kind::Reads).enqueue::<_, 3>(a));
        } else {
            Self::kick(this, |a| wq::queue(Kind::Defer).enqueue::<_, 1>(a));
        }
    }

    /// Queues a work item with `enqueue`, counted as busy until it has run;
    /// returns whether it was queued (not already waiting to run).
    fn kick(this: &Arc<Self>, enqueue: impl FnOnce(Arc<Self>) -> Result<(), Arc<Self>>) -> bool {
        this.busy.0.add(1, Relaxed);
        if enqueue(this.clone()).is_ok() {
            return true;
        }
        this.busy.0.fetch_sub(1, Release);
        false
    }

    /// Makes room in the lists of waiting requests for the tags of one
    /// more disk, which the caller is about to add.
    ///
    /// Disks are added and deleted by one caller at a time: at assembly,
    /// before the array is in the controller's table, and later by the
    /// control operation that holds the array's number as busy.
    pub(crate) fn room_for_disk(&self) -> Result {
        let want = self
            .disks
            .load(Relaxed)
            .checked_add(1)
            .and_then(|d| d.checked_mul(TAGS_PER_DISK))
            .ok_or(ENOMEM)?;
        for list in [&self.deferred, &self.reads] {
            if list.lock().capacity() >= want {
                continue;
            }
            // Allocated outside the lock, filled and swapped in under it.
            let mut fresh = KVec::with_capacity(want, GFP_KERNEL)?;
            let mut l = list.lock();
            for d in l.drain_all() {
                // Cannot fail: `fresh` has more room than `l` had.
                if fresh.push_within_capacity(d).is_err() {
                    return Err(ENOMEM);
                }
            }
            core::mem::swap(&mut *l, &mut fresh);
            drop(l);
            drop(fresh);
        }
        self.disks.add(1, Relaxed);
        Ok(())
    }

    /// Gives back the room [`Self::room_for_disk`] made, once the disk is
    /// deleted; the lists keep their capacity for the next disk.
    pub(crate) fn disk_gone(&self) {
        self.disks.fetch_sub(1, Relaxed);
    }

    /// Serves the requests on `list` until it is empty (worker context).
    fn serve_all(self: &Arc<Self>, list: &SpinLock<KVec<Deferred>>) {
        loop {
            let next = {
                let mut q = list.lock();
                if q.is_empty() {
                    break;
                }
                q.remove(0)
            };
            let Ok(next) = next else { break };
            self.serve_deferred(next);
        }
    }

    /// Serves a deferred request, waiting as needed (worker context).
    fn serve_deferred(self: &Arc<Self>, d: Deferred) {
        let io = self.io();
        let (fan, r) = match d {
            Deferred::Write {
                fan,
                vol,
                lba,
                n,
                done,
                fua,
                trim,
            } => {
                let r = crate::blk::noio(|| {
                    self.writer.prepare(&vol, lba, n, !trim, GFP_KERNEL)?;
                    let src = if trim {
                        Source::Trim
                    } else {
                        Source::Host(&fan)
                    };
                    self.writer
                        .write(self, &io, &vol, lba, n, done, src, true)?;
                    if fua {
                        self.writer.flush(self, &io)?;
                    }
                    Ok(())
                });
                (fan, r)
            }
            Deferred::Flush { fan } => {
                let r = crate::blk::noio(|| self.writer.flush(self, &io));
                (fan, r)
            }
            Deferred::Read { fan, vol } => {
                let r = crate::blk::noio(|| crate::volume::read(self, &vol, &fan));
                (fan, r)
            }
        };
        if let Err(e) = r {
            fan.fail(Status::from_error(e));
        }
    }
}

/// The form of divergence map a copy recorded with `meta` keeps, if any.
pub(crate) fn divergence_of(meta: CopyMeta) -> Option<diverge::Form> {
    match meta {
        CopyMeta::FullBitmap => Some(diverge::Form::Bitmap),
        CopyMeta::MultiLevelBitmap => Some(diverge::Form::Multi),
        CopyMeta::PartialAreaBitmap => Some(diverge::Form::Partial),
        _ => None,
    }
}

/// How the volume table records divergence map form `form`.
pub(crate) fn divergence_meta(form: Option<diverge::Form>) -> CopyMeta {
    match form {
        Some(diverge::Form::Bitmap) => CopyMeta::FullBitmap,
        Some(diverge::Form::Multi) => CopyMeta::MultiLevelBitmap,
        Some(diverge::Form::Partial) => CopyMeta::PartialAreaBitmap,
        None => CopyMeta::None,
    }
}

/// What the maps of a copy recorded with `meta` keep where they write into
/// what they share.
fn form_of(meta: CopyMeta) -> Form {
    match meta {
        CopyMeta::ChangedBlocks => Form::Changed,
        _ => Form::Full,
    }
}
