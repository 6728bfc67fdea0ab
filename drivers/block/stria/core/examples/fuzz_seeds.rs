// SPDX-License-Identifier: GPL-2.0

//! Writes the fuzzers' seed corpus from real encodes:
//!
//!     cargo run --example fuzz_seeds -- fuzz/corpus
//!
//! Seeds are what lets a fuzzer reach past the magic and the field checks
//! into the deeper validation; the fuzz targets repair the checksum.

use std::fs;
use std::path::Path;

use stria_core::geometry;
use stria_core::geometry::RaidType;
use stria_core::header::HeaderBuilder;
use stria_core::header::StripeLocation;
use stria_core::header::StripeParams;
use stria_core::header::HEADER_BYTES;
use stria_core::superblock;
use stria_core::superblock::CopyMeta;
use stria_core::superblock::Layout;
use stria_core::superblock::MemberEntry;
use stria_core::superblock::MemberState;
use stria_core::superblock::StripeGroup;
use stria_core::superblock::Superblock;
use stria_core::superblock::VolumeEntry;
use stria_core::superblock::SB_BYTES;
use stria_core::uuid::Uuid;

fn superblock(members: u8, copy: bool) -> Vec<u8> {
    let mut sb = Superblock::EMPTY;
    sb.incompat = superblock::feature::INCOMPAT_LOG_STRIPES;
    sb.generation = 7;
    sb.array_uuid = Uuid([0x5a; 16]);
    superblock::set_name(&mut sb.array_name, "seed").unwrap();
    sb.member_count = members;
    sb.member_index = members - 1;
    for i in 0..members {
        let mut u = [0x33; 16];
        u[15] = i;
        sb.members[usize::from(i)] = MemberEntry {
            uuid: Uuid(u),
            size_blocks: 1 << 18,
            state: MemberState::Active,
        };
    }
    let l = superblock::locations(1 << 18).unwrap();
    sb.data_start = l.data_start;
    sb.data_end = l.data_end;
    sb.group_count = 1;
    sb.groups[0] = StripeGroup {
        members: u32::MAX >> (32 - u32::from(members)),
        raid_type: if members >= 3 {
            RaidType::Raid5
        } else {
            RaidType::Raid1
        },
        width: members,
        strip_blocks: 64,
    };
    let mut name = [0u8; 32];
    superblock::set_name(&mut name, "vol").unwrap();
    let base = VolumeEntry {
        id: 1,
        flags: 0,
        size_blocks: 1 << 16,
        layout: Layout::FullPointer,
        copy_meta: CopyMeta::None,
        divergence: CopyMeta::None,
        group: 0,
        parent_id: 0,
        origin_id: 0,
        copy_generation: 0,
        ctime: 1,
        name,
    };
    sb.volumes[0] = Some(base);
    sb.next_volume_id = 2;
    if copy {
        sb.ro_compat = superblock::feature::RO_COMPAT_SHARED_BLOCKS;
        sb.log_head = Some(StripeLocation {
            member: 0,
            lba: 300,
        });
        sb.log_seq = 9;
        sb.volumes[3] = Some(VolumeEntry {
            id: 2,
            flags: superblock::volume_flags::COPY,
            copy_meta: CopyMeta::FullPointerTable,
            divergence: CopyMeta::FullBitmap,
            parent_id: 1,
            origin_id: 1,
            copy_generation: 9,
            ..base
        });
        sb.next_volume_id = 3;
    }
    let mut buf = vec![0u8; SB_BYTES];
    sb.encode(&mut buf).unwrap();
    buf
}

fn header(raid: RaidType, n: u8, strip_blocks: u32, writes: u64) -> Vec<u8> {
    let (p, q) = geometry::default_parity(raid, usize::from(n), 3);
    let params = StripeParams {
        array_uuid: Uuid([0x5a; 16]),
        seq: 3,
        timestamp: 1_700_000_000_000_000_000,
        prev: Some(StripeLocation {
            member: 1,
            lba: 512,
        }),
        durable_seq: 2,
        raid_type: raid,
        group: 0,
        strip_blocks,
        parity_index: p,
        q_index: q,
    };
    let locs: Vec<StripeLocation> = (0..n)
        .map(|i| StripeLocation {
            member: i,
            lba: 256 + u64::from(i) * 65,
        })
        .collect();
    let mut b = HeaderBuilder::new(&params, &locs).unwrap();
    for w in 0..writes {
        if b.append(1 + (w % 2) as u32, w * 37, 1 + w % 5).is_err() {
            break;
        }
        if w % 4 == 3 {
            b.append_trim(2, w * 1000, 8).unwrap();
        }
    }
    let mut buf = vec![0u8; HEADER_BYTES];
    b.encode(&mut buf).unwrap();
    buf
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join(name), bytes).unwrap();
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let dir = Path::new(&dir);
    write(dir, "superblock", "seed-two-members", &superblock(2, false));
    write(
        dir,
        "superblock",
        "seed-five-members-copy",
        &superblock(5, true),
    );
    let headers = [
        ("seed-raid0-1x8", header(RaidType::Raid0, 1, 8, 3)),
        ("seed-raid1-2x16", header(RaidType::Raid1, 2, 16, 6)),
        ("seed-raid5-5x64", header(RaidType::Raid5, 5, 64, 40)),
        ("seed-raid6-6x32", header(RaidType::Raid6, 6, 32, 200)),
    ];
    let params: [u8; 32] = core::array::from_fn(|i| (i * 29 + 3) as u8);
    for (name, h) in &headers {
        write(dir, "header", name, h);
        let mut g = params.to_vec();
        g.extend_from_slice(h);
        write(dir, "geometry", name, &g);
    }
    // n, len/3, p, q, nmissing, m0, m1, m2, contents.
    let parity: [(&str, &[u8]); 3] = [
        (
            "seed-raid5-4+1",
            &[5, 20, 4, 0, 1, 2, 0, 0, 1, 2, 3, 0x80, 0xff],
        ),
        (
            "seed-raid6-4+2",
            &[6, 22, 4, 5, 2, 0, 3, 0, 0x1d, 0x55, 0xaa, 9],
        ),
        (
            "seed-raid6-pq",
            &[8, 42, 1, 0, 2, 1, 0, 7, 0xde, 0xad, 0xbe, 0xef],
        ),
    ];
    for (name, bytes) in parity {
        write(dir, "parity", name, bytes);
    }
}
