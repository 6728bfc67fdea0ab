// SPDX-License-Identifier: GPL-2.0

//! The volume table: volumes added, resized, copied and removed, each
//! change written to every member's superblock before it is served.

use super::Array;
use crate::format::header::StripeLocation;
use crate::format::header::MAX_ALSO;
use crate::format::superblock::feature;
use crate::format::superblock::volume_flags;
use crate::format::superblock::CopyMeta;
use crate::format::superblock::VolumeEntry;
use crate::format::superblock::MAX_VOLUMES;
use crate::map::diverge;
use crate::map::diverge::Divergence;
use crate::map::Directory;
use crate::map::Form;
use crate::members;
use crate::writer::Source;
use crate::writer::Volume;
use crate::writer::MAX_FAMILY;
use kernel::prelude::*;
use kernel::sync::Arc;

/// The volume table as the superblocks record it.
pub(crate) struct Table {
    /// Volumes, at most [`MAX_VOLUMES`].
    pub(crate) volumes: KVec<VolumeEntry>,
    /// Id the next volume gets.
    pub(crate) next_id: u32,
    pub(super) generation: u64,
    pub(super) log: Option<(StripeLocation, u64)>,
    /// Incompat features to add to the superblocks (those they have stay).
    pub(super) incompat: u64,
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
pub(super) fn form_of(meta: CopyMeta) -> Form {
    match meta {
        CopyMeta::ChangedBlocks => Form::Changed,
        _ => Form::Full,
    }
}

impl Array {
    /// The volumes being served.
    pub(crate) fn volume_list(&self) -> Result<KVec<Arc<Volume>>> {
        let mut v = KVec::with_capacity(MAX_VOLUMES, GFP_KERNEL)?;
        for vol in self.volumes.lock().iter() {
            v.push_within_capacity(vol.clone()).map_err(|_| ENOMEM)?;
        }
        Ok(v)
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

    pub(super) fn table_copy(&self, t: &Table) -> Result<KBox<Table>> {
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
    pub(super) fn unserve(&self, id: u32) -> Option<Arc<Volume>> {
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
            this.writer
                .write(this, &io, vol, blocks, old - blocks, 0, Source::Trim, true)?;
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
}
