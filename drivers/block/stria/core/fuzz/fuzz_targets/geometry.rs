// SPDX-License-Identifier: GPL-2.0

//! Geometry on decoded headers, the header builder driven by fuzzer-chosen
//! operations, and the static RAID-0 map.
//!
//! Input: 32 bytes of parameters, then a header block (checksum repaired).

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use stria_core::crc;
use stria_core::geometry;
use stria_core::header::off;
use stria_core::header::HeaderBuilder;
use stria_core::header::StripeHeader;
use stria_core::header::StripeParams;
use stria_core::header::HEADER_BYTES;
use stria_core::le;

fn u64_at(d: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (o, s) in b.iter_mut().zip(d.iter().skip(i)) {
        *o = *s;
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let (a, b, c, d) = (
        u64_at(data, 0),
        u64_at(data, 8),
        u64_at(data, 16),
        u64_at(data, 24),
    );
    let _ = geometry::raid0_map(a, (b % 40) as u32, c % 1000);
    if let Ok(r) = geometry::raid0_map(a, (b % 32) as u32 + 1, c % 1000 + 1) {
        assert!(r.blocks >= 1 && r.blocks <= c % 1000 + 1);
        assert!(r.member <= (b % 32) as u32);
    }

    let body = data.get(32..).unwrap_or(&[]);
    let mut buf = [0u8; HEADER_BYTES];
    let n = body.len().min(HEADER_BYTES);
    buf[..n].copy_from_slice(&body[..n]);
    if let Some(sum) = crc::crc32c_skip_field(&buf, off::CRC) {
        le::put_u32(&mut buf, off::CRC, sum).unwrap();
    }
    let Ok(h) = StripeHeader::decode(&buf) else {
        return;
    };

    // The whole data space maps onto distinct data blocks of data strips.
    let total = geometry::data_blocks(&h);
    let mut seen = HashSet::new();
    let mut count = 0;
    for r in geometry::map_data(&h, 0, total).unwrap() {
        let s = h.strips[usize::from(r.strip)];
        assert_eq!(r.member, s.member);
        assert!(
            r.lba > s.lba && r.lba + u64::from(r.blocks) <= s.lba + 1 + u64::from(h.strip_blocks)
        );
        assert!(seen.insert((r.member, r.lba)));
        count += u64::from(r.blocks);
    }
    assert_eq!(count, total);
    let _ = geometry::map_data(&h, a, b);
    if total > 0 {
        let start = a % total;
        let len = b % (total - start + 1);
        let got: u64 = geometry::map_data(&h, start, len)
            .unwrap()
            .map(|r| u64::from(r.blocks))
            .sum();
        assert_eq!(got, len);
    }
    for i in 0..=usize::from(h.nr_strips) {
        let _ = geometry::strip_role(&h, i);
        let _ = geometry::data_strip(&h, i);
    }
    for (si, p) in h.pieces_with_strip() {
        if let Some(r) = geometry::piece_run(&h, si, p).unwrap() {
            assert!(r.lba > h.strips[si].lba);
        }
        let _ = geometry::host_block_run(&h, si, p, p.host_lba.wrapping_add(c % 70_000));
    }

    // Rebuild a stripe of the same shape through the builder, driven by
    // the parameters, and check that it always yields a valid header.
    let params = StripeParams {
        array_uuid: h.array_uuid,
        seq: h.seq,
        timestamp: h.timestamp,
        prev: h.prev,
        durable_seq: h.durable_seq,
        raid_type: h.raid_type,
        group: h.group,
        strip_blocks: h.strip_blocks,
        parity_index: h.parity_index,
        q_index: h.q_index,
    };
    let locs: Vec<_> = (0..h.strips().len())
        .map(|i| h.location(i).unwrap())
        .collect();
    let mut bld = HeaderBuilder::new(&params, &locs).unwrap();
    let mut x = d | 1;
    for _ in 0..(a % 400) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let vol = (x % 4) as u32;
        let lba = (x >> 8) % (1 << 30);
        let len = (x >> 40) % 300;
        let r = if x & 0x8000 != 0 {
            bld.append_trim(vol, lba, len * 300).map(|_| ())
        } else {
            bld.append(vol, lba, len).map(|_| ())
        };
        if r == Err(stria_core::error::FormatError::DoesNotFit) {
            break;
        }
    }
    let mut out = [0u8; HEADER_BYTES];
    bld.encode(&mut out).unwrap();
    assert_eq!(StripeHeader::decode(&out).as_ref(), Ok(bld.header()));
});
