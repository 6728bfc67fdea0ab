// SPDX-License-Identifier: GPL-2.0

//! Property tests: round trips, bit-flip detection, parity reconstruction
//! and geometry coverage over random inputs.

mod common;

use std::collections::HashSet;

use common::*;
use proptest::prelude::*;
use stria_core::geometry;
use stria_core::geometry::RaidType;
use stria_core::header::HeaderBuilder;
use stria_core::header::StripeHeader;
use stria_core::header::StripeLocation;
use stria_core::header::StripeParams;
use stria_core::header::HEADER_BYTES;
use stria_core::parity;
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

/// One operation on a header builder.
#[derive(Clone, Debug)]
enum Op {
    Write {
        volume: u32,
        host_lba: u64,
        blocks: u64,
    },
    Trim {
        volume: u32,
        host_lba: u64,
        blocks: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u32..5, 0u64..1 << 40, 1u64..100).prop_map(|(volume, host_lba, blocks)| Op::Write {
            volume,
            host_lba,
            blocks
        }),
        1 => (1u32..5, 0u64..1 << 40, 1u64..100_000).prop_map(|(volume, host_lba, blocks)| Op::Trim {
            volume,
            host_lba,
            blocks
        }),
    ]
}

/// A valid stripe layout: RAID type, strip count, parity positions.
fn layout() -> impl Strategy<Value = (RaidType, usize, Option<u8>, Option<u8>)> {
    (0usize..4, 0usize..32, any::<u64>()).prop_map(|(t, extra, seq)| {
        let raid = [
            RaidType::Raid0,
            RaidType::Raid1,
            RaidType::Raid5,
            RaidType::Raid6,
        ][t];
        let n = (raid.min_strips() + extra).min(32);
        let (p, q) = geometry::default_parity(raid, n, seq);
        (raid, n, p, q)
    })
}

fn stripe_header() -> impl Strategy<Value = StripeHeader> {
    (
        layout(),
        1u32..=64,
        any::<[u8; 16]>(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of((0u8..32, any::<u64>())),
        0u8..8,
        proptest::collection::vec(op(), 0..200),
        proptest::collection::vec(any::<u32>(), 32),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                (raid, n, p, q),
                strip_blocks,
                uuid,
                seq,
                ts,
                prev,
                group,
                ops,
                crcs,
                lbaseed,
                durable,
            )| {
                let mut uuid = Uuid(uuid);
                if uuid.is_nil() {
                    uuid.0[0] = 1;
                }
                let params = StripeParams {
                    array_uuid: uuid,
                    seq,
                    timestamp: ts,
                    prev: prev.map(|(member, lba)| StripeLocation { member, lba }),
                    // Anything below `seq`, or 0 (none).
                    durable_seq: durable.checked_rem(seq).unwrap_or(0),
                    raid_type: raid,
                    group,
                    strip_blocks,
                    parity_index: p,
                    q_index: q,
                };
                // Distinct members in a scrambled order, strips anywhere.
                let rot = (lbaseed % 32) as u8;
                let strips: Vec<StripeLocation> = (0..n as u8)
                    .map(|i| StripeLocation {
                        member: (i + rot) % 32,
                        lba: (lbaseed >> 8).wrapping_mul(u64::from(i) + 1) % (1 << 50),
                    })
                    .collect();
                let mut b = HeaderBuilder::new(&params, &strips).unwrap();
                for op in ops {
                    let r = match op {
                        Op::Write {
                            volume,
                            host_lba,
                            blocks,
                        } => b.append(volume, host_lba, blocks).map(|_| ()),
                        Op::Trim {
                            volume,
                            host_lba,
                            blocks,
                        } => b.append_trim(volume, host_lba, blocks).map(|_| ()),
                    };
                    if r.is_err() {
                        break;
                    }
                }
                for (i, c) in crcs.iter().enumerate().take(n) {
                    b.set_data_crc(i, *c).unwrap();
                }
                *b.header()
            },
        )
}

fn name(s: &str) -> [u8; 32] {
    let mut n = [0u8; 32];
    superblock::set_name(&mut n, s).unwrap();
    n
}

fn superblock_strategy() -> impl Strategy<Value = Superblock> {
    (
        2u8..=32,
        any::<u8>(),
        any::<[u64; 6]>(),
        any::<[u8; 16]>(),
        proptest::collection::vec((1u64..1 << 40, 0u8..3), 32),
        1usize..=8,
        proptest::collection::vec((any::<u32>(), 0usize..4, any::<u8>(), 1u32..=32768), 8),
        proptest::collection::vec(
            proptest::option::of((any::<u32>(), 1u64..1 << 40, any::<bool>())),
            64,
        ),
        "[a-z0-9 _.-]{0,64}",
    )
        .prop_map(
            |(count, idx, nums, uuid, members, ngroups, groups, vols, aname)| {
                let mut sb = Superblock::EMPTY;
                sb.compat = nums[0];
                sb.ro_compat = nums[1];
                sb.incompat = nums[2] & superblock::feature::INCOMPAT_KNOWN;
                sb.generation = nums[3];
                sb.ctime = nums[4];
                sb.mtime = nums[5];
                sb.array_uuid = Uuid(uuid);
                sb.array_uuid.0[15] |= 1;
                superblock::set_name(&mut sb.array_name, &aname).unwrap();
                sb.member_count = count;
                sb.member_index = idx % count;
                for i in 0..count {
                    let (size, state) = members[usize::from(i)];
                    sb.members[usize::from(i)] = MemberEntry {
                        uuid: member_uuid(i),
                        size_blocks: size + 1024,
                        state: [
                            MemberState::Active,
                            MemberState::Failed,
                            MemberState::Rebuilding,
                        ][usize::from(state)],
                    };
                }
                let me = sb.members[usize::from(sb.member_index)];
                let loc = superblock::locations(me.size_blocks).unwrap();
                sb.data_start = loc.data_start;
                sb.data_end = loc.data_end;
                if nums[3] % 3 != 0 {
                    let m = (nums[4] % u64::from(count)) as u8;
                    let size = sb.members[usize::from(m)].size_blocks;
                    sb.log_head = Some(StripeLocation {
                        member: m,
                        lba: nums[5] % size,
                    });
                    sb.log_seq = nums[0];
                }
                sb.group_count = ngroups as u8;
                let all = u32::MAX >> (32 - u32::from(count));
                for (g, &(bits, t, width, strip)) in sb.groups.iter_mut().zip(&groups).take(ngroups)
                {
                    let bits = (bits & all) | 0b11;
                    let raid = [
                        RaidType::Raid0,
                        RaidType::Raid1,
                        RaidType::Raid5,
                        RaidType::Raid6,
                    ][t];
                    let max = bits.count_ones() as usize;
                    let raid = if max < raid.min_strips() {
                        RaidType::Raid1
                    } else {
                        raid
                    };
                    let width =
                        raid.min_strips() + usize::from(width) % (max - raid.min_strips() + 1);
                    *g = StripeGroup {
                        members: bits,
                        raid_type: raid,
                        width: width as u8,
                        strip_blocks: strip,
                    };
                }
                let mut next = 1u32;
                for (slot, v) in sb.volumes.iter_mut().zip(&vols) {
                    let Some((seed, size, copy)) = *v else {
                        continue;
                    };
                    let id = next;
                    next += 1 + seed % 3;
                    let copy = copy && id > 1;
                    *slot = Some(VolumeEntry {
                        id,
                        flags: (seed & 1)
                            | if copy {
                                superblock::volume_flags::COPY
                            } else {
                                0
                            },
                        size_blocks: size,
                        layout: if seed & 2 != 0 {
                            Layout::FullPointer
                        } else {
                            Layout::LoadPointOffset
                        },
                        copy_meta: if copy {
                            CopyMeta::ChangedBlocks
                        } else {
                            CopyMeta::None
                        },
                        divergence: if copy {
                            CopyMeta::PartialAreaBitmap
                        } else {
                            CopyMeta::None
                        },
                        group: (seed % ngroups as u32) as u8,
                        parent_id: if copy { 1 } else { 0 },
                        origin_id: if copy { 1 } else { 0 },
                        copy_generation: if copy { u64::from(seed) } else { 0 },
                        ctime: u64::from(seed) << 3,
                        name: name(&format!("v{id}")),
                    });
                }
                sb.next_volume_id = next;
                sb
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_round_trip(h in stripe_header()) {
        let mut buf = vec![0u8; HEADER_BYTES];
        h.encode(&mut buf).unwrap();
        let d = StripeHeader::decode(&buf).unwrap();
        prop_assert_eq!(d, h);
        // Re-encoding is byte-identical.
        let mut again = vec![0u8; HEADER_BYTES];
        d.encode(&mut again).unwrap();
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn header_bit_flip_detected(h in stripe_header(), bit in 0usize..HEADER_BYTES * 8) {
        let mut buf = vec![0u8; HEADER_BYTES];
        h.encode(&mut buf).unwrap();
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(StripeHeader::decode(&buf).is_err());
    }

    #[test]
    fn superblock_round_trip(sb in superblock_strategy()) {
        let mut buf = vec![0u8; SB_BYTES];
        sb.encode(&mut buf).unwrap();
        let d = Superblock::decode(&buf).unwrap();
        prop_assert_eq!(d, sb);
    }

    #[test]
    fn superblock_bit_flip_detected(sb in superblock_strategy(), bit in 0usize..SB_BYTES * 8) {
        let mut buf = vec![0u8; SB_BYTES];
        sb.encode(&mut buf).unwrap();
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Superblock::decode(&buf).is_err());
    }

    #[test]
    fn geometry_maps_every_block_once(h in stripe_header(), a in any::<u64>(), b in any::<u64>()) {
        let total = geometry::data_blocks(&h);
        prop_assert_eq!(
            total,
            geometry::data_strip_count(&h) as u64 * u64::from(h.strip_blocks)
        );
        let mut seen = HashSet::new();
        let mut count = 0u64;
        for r in geometry::map_data(&h, 0, total).unwrap() {
            let s = h.strips[usize::from(r.strip)];
            prop_assert_eq!(r.member, s.member);
            prop_assert!(matches!(
                geometry::strip_role(&h, usize::from(r.strip)).unwrap(),
                geometry::StripRole::Data(_)
            ));
            prop_assert!(r.blocks > 0);
            prop_assert!(r.lba > s.lba);
            prop_assert!(r.lba + u64::from(r.blocks) <= s.lba + 1 + u64::from(h.strip_blocks));
            for x in 0..u64::from(r.blocks) {
                prop_assert!(seen.insert((r.member, r.lba + x)));
            }
            count += u64::from(r.blocks);
        }
        prop_assert_eq!(count, total);

        // A sub-range maps to exactly the blocks the whole range gives it.
        let (lo, hi) = if total == 0 { (0, 0) } else { (a % total, b % total) };
        let (start, end) = (lo.min(hi), lo.max(hi));
        let whole: Vec<(u8, u64)> = geometry::map_data(&h, 0, total)
            .unwrap()
            .flat_map(|r| (0..u64::from(r.blocks)).map(move |x| (r.member, r.lba + x)))
            .collect();
        let part: Vec<(u8, u64)> = geometry::map_data(&h, start, end - start)
            .unwrap()
            .flat_map(|r| (0..u64::from(r.blocks)).map(move |x| (r.member, r.lba + x)))
            .collect();
        prop_assert_eq!(&part[..], &whole[start as usize..end as usize]);

        // Pieces land inside their strips and never share a block.
        let mut used = HashSet::new();
        for (si, p) in h.pieces_with_strip() {
            if let Some(r) = geometry::piece_run(&h, si, p).unwrap() {
                for x in 0..u64::from(r.blocks) {
                    prop_assert!(seen.contains(&(r.member, r.lba + x)));
                    prop_assert!(used.insert((r.member, r.lba + x)));
                }
            }
        }
    }

    #[test]
    fn raid5_rebuilds_any_strip(
        n in 2usize..12,
        len in 0usize..3000,
        seed in any::<u64>(),
        p in any::<usize>(),
        lost in any::<usize>(),
    ) {
        let mut s = random_strips(n, len, seed);
        let p = p % n;
        {
            let mut refs: Vec<&mut [u8]> = s.iter_mut().map(|v| v.as_mut_slice()).collect();
            parity::raid5_gen(&mut refs, p).unwrap();
        }
        let good = s.clone();
        let lost = lost % n;
        s[lost].iter_mut().for_each(|b| *b = b.wrapping_add(0x5a));
        let mut refs: Vec<&mut [u8]> = s.iter_mut().map(|v| v.as_mut_slice()).collect();
        parity::raid5_recover(&mut refs, lost).unwrap();
        prop_assert_eq!(s, good);
    }

    #[test]
    fn raid6_rebuilds_any_two(
        n in 3usize..16,
        len in 0usize..3000,
        seed in any::<u64>(),
        pq in any::<(usize, usize)>(),
        lost in any::<(usize, usize)>(),
    ) {
        let mut s = random_strips(n, len, seed);
        let p = pq.0 % n;
        let q = (p + 1 + pq.1 % (n - 1)) % n;
        {
            let mut refs: Vec<&mut [u8]> = s.iter_mut().map(|v| v.as_mut_slice()).collect();
            parity::raid6_gen(&mut refs, p, q).unwrap();
        }
        let good = s.clone();
        let shared: Vec<&[u8]> = good.iter().map(|v| v.as_slice()).collect();
        prop_assert!(parity::raid6_verify(&shared, p, q).unwrap());
        let (a, b) = (lost.0 % n, lost.1 % n);
        let missing: Vec<usize> = if a == b { vec![a] } else { vec![a, b] };
        for &m in &missing {
            s[m].iter_mut().for_each(|x| *x ^= 0xa7);
        }
        let mut refs: Vec<&mut [u8]> = s.iter_mut().map(|v| v.as_mut_slice()).collect();
        parity::raid6_recover(&mut refs, p, q, &missing).unwrap();
        prop_assert_eq!(s, good);
    }
}

fn random_strips(n: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

/// Every single-bit flip of one encoded header and superblock, exhaustively.
#[test]
fn every_bit_flip_of_samples_is_detected() {
    let mut h = encoded_header();
    for bit in 0..h.len() * 8 {
        h[bit / 8] ^= 1 << (bit % 8);
        assert!(StripeHeader::decode(&h).is_err(), "header bit {bit}");
        h[bit / 8] ^= 1 << (bit % 8);
    }
    let mut sb = encoded_sb();
    for bit in 0..sb.len() * 8 {
        sb[bit / 8] ^= 1 << (bit % 8);
        assert!(Superblock::decode(&sb).is_err(), "superblock bit {bit}");
        sb[bit / 8] ^= 1 << (bit % 8);
    }
}
