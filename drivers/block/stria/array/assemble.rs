// SPDX-License-Identifier: GPL-2.0

//! Assembly and shut-down: members opened and checked, the maps rebuilt
//! by the scan, the volumes made; and everything queued run before stop.

use super::divergence_of;
use super::table::form_of;
use super::Array;
use super::Busy;
use super::Counters;
use super::Table;
use crate::blk::bio::BioSet;
use crate::format::superblock::volume_flags;
use crate::format::superblock::Layout;
use crate::format::superblock::VolumeEntry;
use crate::format::superblock::MAX_VOLUMES;
use crate::map::Map;
use crate::members;
use crate::rebuild;
use crate::writer::Policy;
use crate::writer::Volume;
use crate::writer::Writer;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::atomic::Acquire;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Full;
use kernel::sync::Arc;

/// Bios kept in reserve for host reads: a reader submits each bio before
/// it allocates the next, so any reserve lets every reader go on.
const READ_BIOS: u32 = 16;

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
        // What follows is timed from the first request on.
        for v in vols.iter() {
            v.map.reset_longest_hold();
        }
        let mut i = 0usize;
        vols.retain(|_| {
            i += 1;
            !ghosts.contains(&(i - 1))
        });
        let batch_bios = policies
            .iter()
            .map(|p| p.batch_bios().and_then(|n| u32::try_from(n).ok()))
            .try_fold(1u32, |most, n| n.map(|n| most.max(n)))
            .ok_or(EINVAL)?;
        let writer = Writer::new(identity.uuid, policies, found.start)?;
        Ok(try_pin_init!(Self {
            identity,
            members,
            volumes <- kernel::new_spinlock!(vols),
            table <- kernel::new_mutex!(table),
            writer <- writer,
            write_bios <- BioSet::new(batch_bios),
            read_bios <- BioSet::new(READ_BIOS),
            work <- kernel::new_work!("stria_array"),
            stripe_work <- kernel::new_work!("stria_stripes"),
            gc_work <- kernel::new_work!("stria_gc"),
            gc_lock <- kernel::new_mutex!(()),
            busy: Arc::new(Busy(Atomic::new(0)), GFP_KERNEL)?,
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
    pub(super) fn volume_of(e: &VolumeEntry, nr_groups: usize) -> Result<Arc<Volume>> {
        Self::volume_sized(e, e.size_blocks, nr_groups)
    }

    /// The same with a map of `blocks` blocks.
    pub(super) fn volume_sized(
        e: &VolumeEntry,
        blocks: u64,
        nr_groups: usize,
    ) -> Result<Arc<Volume>> {
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

    /// Writes out everything buffered and flushes the members; called once
    /// the volumes' disks are gone.
    pub(crate) fn shut_down(this: &Arc<Self>) {
        // A full barrier, against the count of an on-demand collection
        // starting (see `collect`).
        this.stopping.xchg(true, Full);
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
        let maps = this.volume_list().map_or((0, None), |l| {
            l.iter()
                .map(|v| v.map.longest_hold())
                .max_by_key(|h| h.0)
                .unwrap_or((0, None))
        });
        let writer = this.writer.longest_hold();
        let (wf, wl) = writer.1.map_or(("-", 0), |s| (s.file(), s.line()));
        let (mf, ml) = maps.1.map_or(("-", 0), |s| (s.file(), s.line()));
        pr_info!(
            "stopping: longest lock holds: writer {} us ({}:{}), volume maps {} us ({}:{})\n",
            writer.0,
            wf,
            wl,
            maps.0,
            mf,
            ml
        );
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
}
