// SPDX-License-Identifier: GPL-2.0

//! Writing a closed stripe: parity, data checksums and header computed in
//! memory, every strip written whole in one batch.

use super::set_bit;
use super::Io;
use super::Owner;
use super::Plan;
use super::Writer;
use super::HDR_OFF;
use super::MAX_FAMILY;
use super::NO_LOC;
use super::P_OFF;
use crate::blk::iobuf::Batch;
use crate::blk::iobuf::IoBuf;
use crate::blk::Status;
use crate::format::crc;
use crate::format::error::FormatError;
use crate::format::geometry;
use crate::format::geometry::RaidType;
use crate::format::geometry::StripRole;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::geometry::MAX_STRIPS;
use crate::format::header::StripeParams;
use crate::format::parity;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;

/// Bytes of each strip whose parity and checksums are computed under one
/// taking of the buffers' locks.
const PARITY_PIECE: usize = 16 * 1024;

impl Writer {
    /// Writes the stripe in buffer `id`, already taken out, or fails the
    /// array if it cannot.
    pub(super) fn close<T: Owner>(&self, owner: &Arc<T>, io: &Io<'_>, id: u16) {
        if let Err(e) = self.build_and_submit(owner, io, id) {
            pr_err!("cannot write a stripe: error {}\n", e.to_errno());
            self.fail_stripe(id);
        }
    }

    pub(super) fn fail_stripe(&self, id: u16) {
        let seq = self.buffer(id).map(|s| s.lock().seq).unwrap_or(0);
        let mut st = self.state.lock();
        st.failed = true;
        // The buffer stays out of use: reads of its blocks still find it.
        st.inflight.retain(|s| *s != seq);
        self.changed.notify_all();
    }

    pub(super) fn build_and_submit<T: Owner>(
        &self,
        owner: &Arc<T>,
        io: &Io<'_>,
        id: u16,
    ) -> Result {
        let mut guard = self.buffer(id)?.lock();
        let slot = &mut *guard;
        let plan = slot.plan.ok_or(EINVAL)?;
        if slot.by_flush {
            self.stats.partial.add(1, Relaxed);
        }
        let pol = self.policies.get(slot.group).ok_or(EINVAL)?;
        let nr = plan.nr_strips;
        let (parity_index, q_index) = geometry::default_parity(plan.raid, nr, slot.seq);
        let params = StripeParams {
            array_uuid: self.uuid,
            seq: slot.seq,
            timestamp: crate::blk::wall_clock_seconds().saturating_mul(1_000_000_000),
            prev: slot.prev,
            raid_type: plan.raid,
            group: pol.group,
            strip_blocks: plan.strip_blocks,
            parity_index,
            q_index,
            durable_seq: slot.durable_seq,
        };
        let seq = slot.seq;
        let fmt = move |e: FormatError| {
            pr_err!("stripe {}: {}\n", seq, e.as_str());
            EIO
        };
        let locs = slot.locs.get(..nr).ok_or(EIO)?;
        slot.out.reset(&params, locs).map_err(fmt)?;
        // The same pieces in the same order land at the same data offsets
        // whatever the strip size: that is where the map points.
        let mut fill = 0u64;
        for p in slot.nominal.header().pieces() {
            let mut also = [0u32; MAX_FAMILY];
            let mut k = 0usize;
            for (a, id) in also
                .iter_mut()
                .zip(slot.nominal.header().volumes_of(p).skip(1))
            {
                *a = id;
                k += 1;
            }
            let also = also.get(..k).unwrap_or(&[]);
            if p.is_trim() {
                let n = slot
                    .out
                    .append_trim_for(p.volume, also, p.host_lba, u64::from(p.host_len))
                    .map_err(fmt)?;
                if n != u64::from(p.host_len) {
                    pr_err!("stripe {}: a trim record split when it was closed\n", seq);
                    return Err(EIO);
                }
                continue;
            }
            let a = slot
                .out
                .append_for(p.volume, also, p.host_lba, u64::from(p.len))
                .map_err(fmt)?;
            if a.data_offset != fill || a.blocks != u64::from(p.len) {
                pr_err!("stripe {}: pieces moved when it was closed\n", seq);
                return Err(EIO);
            }
            fill += a.blocks;
        }
        let used = usize::try_from(fill).map_err(|_| EIO)? * BLOCK_SIZE;
        let sbytes = plan.strip_blocks as usize * BLOCK_SIZE;
        let data = self.data.get(usize::from(id)).ok_or(EINVAL)?;
        let out = self.out.get(usize::from(id)).ok_or(EINVAL)?;
        let q_off = P_OFF + self.strip_bytes;
        let mut roles = [StripRole::P; MAX_STRIPS];
        for (i, r) in roles.iter_mut().enumerate().take(nr) {
            *r = geometry::strip_role(slot.out.header(), i).map_err(fmt)?;
        }
        // The buffer is out of every list: until its batch is submitted,
        // nothing but this close changes it, so the slot's lock can go
        // while parity and checksums are computed.
        drop(guard);
        let crcs = self.parity_and_crcs(&plan, &roles, data, out, used, fmt)?;
        let mut guard = self.buffer(id)?.lock();
        let slot = &mut *guard;
        for (i, c) in crcs.iter().enumerate().take(nr) {
            slot.out.set_data_crc(i, *c).map_err(fmt)?;
        }
        out.with(|o| slot.out.encode(o.get_mut(..P_OFF).ok_or(EIO)?).map_err(fmt))?;
        // Where each strip goes and what it carries, so that the bios can
        // be built (which may sleep) without the slot's lock.
        let mut targets = [(NO_LOC, false, 0usize); MAX_STRIPS];
        for (i, t) in targets.iter_mut().enumerate().take(nr) {
            let loc = *slot.locs.get(i).ok_or(EINVAL)?;
            *t = match roles.get(i).ok_or(EINVAL)? {
                StripRole::Data(k) => (loc, false, usize::from(*k) * sbytes),
                StripRole::Mirror => (loc, false, 0),
                StripRole::P => (loc, true, P_OFF),
                StripRole::Q => (loc, true, q_off),
            };
        }
        drop(guard);
        let _one = self.building.lock();
        let mut batch = Batch::new(owner.clone(), usize::from(id))?;
        for (loc, in_out, off) in targets.iter().take(nr) {
            let buf = if *in_out { out } else { data };
            let member = io.members.get(usize::from(loc.member)).ok_or(EIO)?;
            let sector = loc.lba.checked_mul(8).ok_or(EIO)?;
            batch.write(
                io.bioset,
                &member.bdev,
                false,
                sector,
                &[(out, HDR_OFF, BLOCK_SIZE), (buf, *off, sbytes)],
            )?;
        }
        self.stats.stripes.add(1, Relaxed);
        self.stats.member_blocks.add(plan.cost(), Relaxed);
        batch.submit();
        Ok(())
    }

    /// Zeroes the data space of a stripe with `plan` from byte `used` on,
    /// computes its parity into `out` and returns the CRC32C of each strip
    /// in the order of `roles`.
    ///
    /// It works in pieces of [`PARITY_PIECE`] bytes of every strip, taking
    /// the buffers' locks for one piece at a time: a read of a block still
    /// in the buffer takes the data's lock under its volume's map lock,
    /// which the submit path takes too.
    fn parity_and_crcs(
        &self,
        plan: &Plan,
        roles: &[StripRole; MAX_STRIPS],
        data: &IoBuf,
        out: &IoBuf,
        used: usize,
        fmt: impl Fn(FormatError) -> Error,
    ) -> Result<[u32; MAX_STRIPS]> {
        let sbytes = plan.strip_blocks as usize * BLOCK_SIZE;
        let end = plan.nr_data.checked_mul(sbytes).ok_or(EIO)?;
        let mut at = used;
        while at < end {
            let len = (end - at).min(PARITY_PIECE);
            data.with(|d| d.get_mut(at..at + len).map(|z| z.fill(0)))
                .ok_or(EIO)?;
            at += len;
        }
        let mut crcs = [!0u32; MAX_STRIPS];
        let mut at = 0usize;
        while at < sbytes {
            let len = (sbytes - at).min(PARITY_PIECE);
            data.with(|d| -> Result {
                let mut strips: [&[u8]; MAX_STRIPS] = [&[]; MAX_STRIPS];
                for (k, s) in strips.iter_mut().enumerate().take(plan.nr_data) {
                    let from = k * sbytes + at;
                    *s = d.get(from..from + len).ok_or(EIO)?;
                }
                let data_strips = strips.get(..plan.nr_data).ok_or(EIO)?;
                out.with(|o| -> Result {
                    let rest = o.get_mut(P_OFF..).ok_or(EIO)?;
                    let (p, q) = rest.split_at_mut(self.strip_bytes);
                    let p = p.get_mut(at..at + len).ok_or(EIO)?;
                    let q = q.get_mut(at..at + len).ok_or(EIO)?;
                    match plan.raid {
                        RaidType::Raid5 => parity::gen_p(data_strips, p).map_err(&fmt)?,
                        RaidType::Raid6 => parity::gen_pq(data_strips, p, q).map_err(&fmt)?,
                        RaidType::Raid0 | RaidType::Raid1 => {}
                    }
                    for (c, role) in crcs.iter_mut().zip(roles.iter()).take(plan.nr_strips) {
                        let piece: &[u8] = match role {
                            StripRole::Data(k) => {
                                data_strips.get(usize::from(*k)).copied().ok_or(EIO)?
                            }
                            StripRole::Mirror => data_strips.first().copied().ok_or(EIO)?,
                            StripRole::P => p,
                            StripRole::Q => q,
                        };
                        *c = crc::update(*c, piece);
                    }
                    Ok(())
                })
            })?;
            at += len;
        }
        for c in crcs.iter_mut() {
            *c = !*c;
        }
        Ok(crcs)
    }

    /// Records that buffer `id`'s batch ended with `status`; the caller
    /// then has the worker run [`Self::complete`]. Interrupt context.
    pub(crate) fn batch_ended(&self, id: usize, status: Status) {
        if let Some(s) = self.status.get(id) {
            s.store(u32::from(status.is_err()), Relaxed);
        }
        set_bit(&self.done, (id % 64) as u16);
    }
}
