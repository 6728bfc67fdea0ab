// SPDX-License-Identifier: GPL-2.0

//! A volume's read path: blocks from the map's member locations, from
//! stripe buffers still being written, or zeros.

use super::VolumeDev;
use crate::blk::bio::Bio;
use crate::blk::bio::BioOp;
use crate::blk::request::Fanout;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::geometry::SECTORS_PER_BLOCK;
use crate::map::Entry;
use kernel::prelude::*;

/// Vectors of a member read bio: a megabyte request split at every 4 KiB
/// block and page boundary stays below it.
const READ_VECS: u16 = 256;
/// Most vectors one block of a request can take (512-byte segments).
const VECS_PER_BLOCK: u16 = SECTORS_PER_BLOCK as u16;

impl VolumeDev {
    /// Serves read request `fan` through the volume's map: unwritten blocks as
    /// zeros, blocks of stripes still being written from memory, the rest from
    /// the members, contiguous member blocks in one bio. Worker context: it
    /// allocates and submits bios.
    pub(super) fn read(&self, fan: &Fanout<Self>) -> Result {
        let array = &self.array;
        let vol = &self.vol;
        let spb = SECTORS_PER_BLOCK;
        let block = BLOCK_SIZE as u64;
        let mut pos = fan.sector() / spb * block;
        // Before any lookup: space freed from now on waits for this read.
        fan.set_cookie(array.writer().reads().enter());
        // (member, next member byte, vectors used, bio)
        let mut cur: Option<(u8, u64, u16, Bio)> = None;
        for seg in fan.segments() {
            let mut done = 0u32;
            while done < seg.len() {
                let inb = pos % block;
                let n = (seg.len() - done).min((block - inb) as u32);
                let piece = seg.slice(done, n).ok_or(EIO)?;
                let mut map = vol.map.lock();
                match map.get(pos / block) {
                    Entry::Unmapped => {
                        drop(map);
                        if !piece.zero() {
                            return Err(EIO);
                        }
                    }
                    Entry::Mem { slot, offset } => {
                        let off = offset as usize * BLOCK_SIZE + inb as usize;
                        let ok = array.writer().read_mem(slot, off, &piece);
                        drop(map);
                        if !ok {
                            pr_err!("buffered block {} unreadable\n", pos / block);
                            return Err(EIO);
                        }
                    }
                    Entry::Disk {
                        member,
                        block: mblock,
                    } => {
                        drop(map);
                        let at = mblock * block + inb;
                        let fits = matches!(&cur, Some((m, next, used, _))
                        if *m == member && *next == at
                            && (inb != 0 || *used + VECS_PER_BLOCK <= READ_VECS));
                        if !fits {
                            let m = array.member(member).ok_or(EIO)?;
                            // Submitted before the next is allocated: a reader
                            // waiting for the reserve holds none of it.
                            if let Some((_, _, _, b)) = cur.take() {
                                fan.submit(b);
                            }
                            let mut bio =
                                fan.new_bio(array.read_bios(), &m.bdev, BioOp::Read, READ_VECS)?;
                            bio.set_sector(at / 512);
                            cur = Some((member, at, 0, bio));
                        }
                        let Some((_, next, used, bio)) = cur.as_mut() else {
                            return Err(EIO);
                        };
                        if !bio.add(&piece) {
                            pr_err!("member bio full at block {}\n", pos / block);
                            return Err(EIO);
                        }
                        *next += u64::from(n);
                        *used += 1;
                    }
                }
                pos += u64::from(n);
                done += n;
            }
        }
        if let Some((_, _, _, bio)) = cur.take() {
            fan.submit(bio);
        }
        Ok(())
    }
}
