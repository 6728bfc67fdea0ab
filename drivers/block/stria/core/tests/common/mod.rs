// SPDX-License-Identifier: GPL-2.0

//! Sample structures shared by the integration tests.

#![allow(dead_code)]

use stria_core::crc;
use stria_core::geometry::RaidType;
use stria_core::header::HeaderBuilder;
use stria_core::header::StripeLocation;
use stria_core::header::StripeParams;
use stria_core::le;
use stria_core::superblock;
use stria_core::superblock::CopyMeta;
use stria_core::superblock::Layout;
use stria_core::superblock::MemberEntry;
use stria_core::superblock::MemberState;
use stria_core::superblock::StripeGroup;
use stria_core::superblock::Superblock;
use stria_core::superblock::VolumeEntry;
use stria_core::uuid::Uuid;

pub const ARRAY: Uuid = Uuid([0xa5; 16]);

pub fn member_uuid(i: u8) -> Uuid {
    let mut u = [0x10; 16];
    u[15] = i;
    u[0] = 0x4d;
    Uuid(u)
}

/// A four-member array, seen from member 1, with two groups and two
/// volumes (one a copy of the other).
pub fn sample_sb() -> Superblock {
    let mut sb = Superblock::EMPTY;
    sb.compat = superblock::feature::COMPAT_MAP_CHECKPOINT;
    sb.ro_compat = superblock::feature::RO_COMPAT_SHARED_BLOCKS;
    sb.incompat = superblock::feature::INCOMPAT_LOG_STRIPES;
    sb.generation = 42;
    sb.ctime = 1_700_000_000;
    sb.mtime = 1_700_000_500;
    sb.array_uuid = ARRAY;
    superblock::set_name(&mut sb.array_name, "pool0").unwrap();
    sb.member_index = 1;
    sb.member_count = 4;
    sb.next_volume_id = 3;
    let loc = superblock::locations(1 << 20).unwrap();
    sb.data_start = loc.data_start;
    sb.data_end = loc.data_end;
    sb.log_head = Some(StripeLocation {
        member: 2,
        lba: 4096,
    });
    sb.log_seq = 777;
    for i in 0..4u8 {
        sb.members[usize::from(i)] = MemberEntry {
            uuid: member_uuid(i),
            size_blocks: 1 << 20,
            state: if i == 3 {
                MemberState::Rebuilding
            } else {
                MemberState::Active
            },
        };
    }
    sb.group_count = 2;
    sb.groups[0] = StripeGroup {
        members: 0b1111,
        raid_type: RaidType::Raid6,
        width: 4,
        strip_blocks: 64,
    };
    sb.groups[1] = StripeGroup {
        members: 0b0011,
        raid_type: RaidType::Raid1,
        width: 2,
        strip_blocks: 16,
    };
    let mut name = [0u8; 32];
    superblock::set_name(&mut name, "vol-a").unwrap();
    sb.volumes[0] = Some(VolumeEntry {
        id: 1,
        flags: 0,
        size_blocks: 262_144,
        layout: Layout::FullPointer,
        copy_meta: CopyMeta::None,
        divergence: CopyMeta::None,
        group: 0,
        parent_id: 0,
        origin_id: 0,
        copy_generation: 0,
        ctime: 1_700_000_001,
        name,
    });
    superblock::set_name(&mut name, "vol-a-snap").unwrap();
    sb.volumes[5] = Some(VolumeEntry {
        id: 2,
        flags: superblock::volume_flags::COPY | superblock::volume_flags::READ_ONLY,
        size_blocks: 262_144,
        layout: Layout::FullPointer,
        copy_meta: CopyMeta::ChangedBlocks,
        divergence: CopyMeta::MultiLevelBitmap,
        group: 1,
        parent_id: 1,
        origin_id: 1,
        copy_generation: 700,
        ctime: 1_700_000_400,
        name,
    });
    sb
}

pub fn params(raid: RaidType, strip_blocks: u32, p: Option<u8>, q: Option<u8>) -> StripeParams {
    StripeParams {
        array_uuid: ARRAY,
        seq: 1000,
        timestamp: 1_700_000_000_123_456_789,
        prev: Some(StripeLocation {
            member: 3,
            lba: 8192,
        }),
        durable_seq: 990,
        raid_type: raid,
        group: 0,
        strip_blocks,
        parity_index: p,
        q_index: q,
    }
}

pub fn locs(n: u8) -> Vec<StripeLocation> {
    (0..n)
        .map(|i| StripeLocation {
            member: (i * 3) % 32,
            lba: 256 + u64::from(i) * 1000,
        })
        .collect()
}

/// A RAID-5 4+1 stripe (P at strip 2) with a few pieces and a trim.
pub fn sample_builder() -> HeaderBuilder {
    let mut b = HeaderBuilder::new(&params(RaidType::Raid5, 16, Some(2), None), &locs(5)).unwrap();
    b.append(1, 100, 10).unwrap();
    b.append(1, 110, 3).unwrap(); // merges with the previous piece
    b.append(2, 5000, 20).unwrap(); // crosses into the next data strip
    b.append_trim(1, 90, 5).unwrap();
    b.append(7, 0, 1).unwrap();
    for i in 0..5 {
        b.set_data_crc(i, 0x1000_0000 + i as u32).unwrap();
    }
    b
}

pub fn encoded_header() -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    sample_builder().encode(&mut buf).unwrap();
    buf
}

pub fn encoded_sb() -> Vec<u8> {
    let mut buf = vec![0u8; superblock::SB_BYTES];
    sample_sb().encode(&mut buf).unwrap();
    buf
}

/// Recomputes the CRC at `crc_off` after a test has patched the bytes.
pub fn reseal(buf: &mut [u8], crc_off: usize) {
    let sum = crc::crc32c_skip_field(buf, crc_off).unwrap();
    le::put_u32(buf, crc_off, sum).unwrap();
}
