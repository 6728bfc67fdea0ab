// SPDX-License-Identifier: GPL-2.0

//! What STRIA_IOC_STATUS reports of an array.

use super::Array;
use crate::format::geometry::SECTORS_PER_BLOCK;
use crate::uapi;
use kernel::sync::atomic::Relaxed;

impl Array {
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
            chunk_sectors: strip.saturating_mul(SECTORS_PER_BLOCK as u32),
            open_count,
            capacity_sectors: main.map_or(0, |v| v.map.size_blocks() * SECTORS_PER_BLOCK),
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
                free_sectors: self.writer.free_blocks(i) * SECTORS_PER_BLOCK,
                ..uapi::MemberInfo::default()
            };
        }
        st
    }
}
