// SPDX-License-Identifier: GPL-2.0

//! KUnit suite running the shared format core inside the kernel: the same
//! codec and parity code the helper uses, built with the kernel's flags.

// A failed assertion is the test failing; the tables under test are built
// here, not read from a member.
#[allow(clippy::indexing_slicing, clippy::panic)]
#[kernel::prelude::kunit_tests(stria_format)]
mod tests {
    use crate::format::crc;
    use crate::format::geometry::RaidType;
    use crate::format::header::HeaderBuilder;
    use crate::format::header::StripeHeader;
    use crate::format::header::StripeLocation;
    use crate::format::header::StripeParams;
    use crate::format::header::HEADER_BYTES;
    use crate::format::parity;
    use crate::format::superblock;
    use crate::format::superblock::MemberEntry;
    use crate::format::superblock::MemberState;
    use crate::format::superblock::StripeGroup;
    use crate::format::superblock::Superblock;
    use crate::format::superblock::SB_BYTES;
    use crate::format::uuid::Uuid;
    use crate::format::vectors;
    use kernel::prelude::*;

    const STRIP: usize = 4096;

    /// Strips filled with a pattern that differs per strip and per byte.
    fn strips(n: usize) -> Result<KVec<KVec<u8>>> {
        let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
        for i in 0..n {
            let mut s = KVec::with_capacity(STRIP, GFP_KERNEL)?;
            for j in 0..STRIP {
                s.push((i * 131 + j * 7 + (j >> 8)) as u8, GFP_KERNEL)?;
            }
            v.push(s, GFP_KERNEL)?;
        }
        Ok(v)
    }

    fn as_mut(v: &mut KVec<KVec<u8>>) -> Result<KVec<&mut [u8]>> {
        let mut out = KVec::with_capacity(v.len(), GFP_KERNEL)?;
        for s in v.iter_mut() {
            out.push(&mut s[..], GFP_KERNEL)?;
        }
        Ok(out)
    }

    #[test]
    fn crc32c_known_answers() {
        for v in vectors::CRC32C.iter() {
            assert_eq!(crc::crc32c(v.input), v.crc);
        }
    }

    #[test]
    fn raid6_known_answer() -> Result {
        let v = &vectors::RAID6;
        let mut p = [0u8; 8];
        let mut q = [0u8; 8];
        parity::gen_pq(&v.data, &mut p, &mut q).map_err(|_| EINVAL)?;
        assert_eq!(p, v.p);
        assert_eq!(q, v.q);
        Ok(())
    }

    #[test]
    fn raid5_rebuilds_every_strip() -> Result {
        let mut s = strips(5)?;
        parity::raid5_gen(&mut as_mut(&mut s)?, 4).map_err(|_| EINVAL)?;
        for lost in 0..5 {
            let mut t = strips(5)?;
            parity::raid5_gen(&mut as_mut(&mut t)?, 4).map_err(|_| EINVAL)?;
            t[lost].fill(0xee);
            parity::raid5_recover(&mut as_mut(&mut t)?, lost).map_err(|_| EINVAL)?;
            assert!(t[lost] == s[lost]);
        }
        Ok(())
    }

    #[test]
    fn raid6_rebuilds_any_two_strips() -> Result {
        let (p, q) = (1, 4);
        let mut s = strips(6)?;
        parity::raid6_gen(&mut as_mut(&mut s)?, p, q).map_err(|_| EINVAL)?;
        for a in 0..6 {
            for b in (a + 1)..6 {
                let mut t = strips(6)?;
                parity::raid6_gen(&mut as_mut(&mut t)?, p, q).map_err(|_| EINVAL)?;
                t[a].fill(0x11);
                t[b].fill(0x22);
                parity::raid6_recover(&mut as_mut(&mut t)?, p, q, &[a, b]).map_err(|_| EINVAL)?;
                assert!(t[a] == s[a] && t[b] == s[b]);
            }
        }
        Ok(())
    }

    #[test]
    fn stripe_header_round_trip_and_bit_flips() -> Result {
        let params = StripeParams {
            array_uuid: Uuid([0x5a; 16]),
            seq: 9,
            timestamp: 1,
            prev: Some(StripeLocation {
                member: 1,
                lba: 512,
            }),
            durable_seq: 7,
            raid_type: RaidType::Raid5,
            group: 0,
            strip_blocks: 16,
            parity_index: Some(3),
            q_index: None,
        };
        let locs = [
            StripeLocation {
                member: 0,
                lba: 256,
            },
            StripeLocation {
                member: 1,
                lba: 300,
            },
            StripeLocation {
                member: 2,
                lba: 256,
            },
            StripeLocation {
                member: 3,
                lba: 999,
            },
        ];
        // Headers are kilobytes: keep them off the kernel stack.
        let mut b = KBox::new(HeaderBuilder::EMPTY, GFP_KERNEL)?;
        b.reset(&params, &locs).map_err(|_| EINVAL)?;
        b.append(1, 100, 20).map_err(|_| EINVAL)?;
        b.append(2, 7, 5).map_err(|_| EINVAL)?;
        let mut buf = KVec::from_elem(0u8, HEADER_BYTES, GFP_KERNEL)?;
        b.encode(&mut buf).map_err(|_| EINVAL)?;
        let mut h = KBox::new(StripeHeader::EMPTY, GFP_KERNEL)?;
        h.decode_into(&buf).map_err(|_| EINVAL)?;
        assert!(*h == *b.header());
        assert!(h.durable_seq == 7);
        // A sample of single-bit flips across the block, all detected.
        for bit in (0..HEADER_BYTES * 8).step_by(97) {
            buf[bit / 8] ^= 1 << (bit % 8);
            assert!(h.decode_into(&buf).is_err());
            buf[bit / 8] ^= 1 << (bit % 8);
        }
        Ok(())
    }

    #[test]
    fn superblock_round_trip_and_bit_flips() -> Result {
        let mut sb = KBox::new(Superblock::EMPTY, GFP_KERNEL)?;
        sb.incompat = superblock::feature::INCOMPAT_LOG_STRIPES;
        sb.generation = 3;
        sb.array_uuid = Uuid([0x77; 16]);
        sb.member_count = 2;
        let loc = superblock::locations(1 << 18).map_err(|_| EINVAL)?;
        sb.data_start = loc.data_start;
        sb.data_end = loc.data_end;
        for i in 0..2 {
            sb.members[i] = MemberEntry {
                uuid: Uuid([i as u8 + 1; 16]),
                size_blocks: 1 << 18,
                state: MemberState::Active,
            };
        }
        sb.group_count = 1;
        sb.groups[0] = StripeGroup {
            members: 0b11,
            raid_type: RaidType::Raid1,
            width: 2,
            strip_blocks: 64,
        };
        let mut buf = KVec::from_elem(0u8, SB_BYTES, GFP_KERNEL)?;
        sb.encode(&mut buf).map_err(|_| EINVAL)?;
        let mut back = KBox::new(Superblock::EMPTY, GFP_KERNEL)?;
        back.decode_into(&buf).map_err(|_| EINVAL)?;
        assert!(*back == *sb);
        for bit in (0..SB_BYTES * 8).step_by(331) {
            buf[bit / 8] ^= 1 << (bit % 8);
            assert!(back.decode_into(&buf).is_err());
            buf[bit / 8] ^= 1 << (bit % 8);
        }
        // Garbage of every length is refused, never a crash.
        for len in [0, 1, 100, 4096, SB_BYTES - 1] {
            assert!(back.decode_into(&buf[..len]).is_err());
        }
        Ok(())
    }
}
