// SPDX-License-Identifier: GPL-2.0

//! Stripe header decoding of arbitrary bytes, with and without a repaired
//! checksum, and the accessors on whatever decodes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stria_core::crc;
use stria_core::header::off;
use stria_core::header::StripeHeader;
use stria_core::header::HEADER_BYTES;
use stria_core::le;

fuzz_target!(|data: &[u8]| {
    let _ = StripeHeader::decode(data);

    let mut buf = [0u8; HEADER_BYTES];
    let n = data.len().min(HEADER_BYTES);
    buf[..n].copy_from_slice(&data[..n]);
    if let Some(sum) = crc::crc32c_skip_field(&buf, off::CRC) {
        le::put_u32(&mut buf, off::CRC, sum).unwrap();
    }
    let Ok(h) = StripeHeader::decode(&buf) else {
        return;
    };
    // No valid header vouches for itself or a later stripe.
    assert!(h.durable_seq == 0 || h.durable_seq < h.seq);
    // A valid header re-encodes to exactly the bytes it came from.
    let mut again = [0u8; HEADER_BYTES];
    h.encode(&mut again).unwrap();
    assert_eq!(again, buf);

    let mut total = 0;
    for i in 0..h.strips().len() {
        total += h.pieces_of(i).unwrap().len();
        let loc = h.location(i).unwrap();
        assert_eq!(h.check_location(loc.member, loc.lba), Ok(i));
    }
    assert_eq!(total, h.entries().len());
    assert_eq!(h.pieces_with_strip().count(), h.pieces().count());
    // Every piece stands for its own volume and at most as many as the
    // volume table holds.
    for p in h.pieces() {
        let n = h.volumes_of(p).count();
        assert!(n >= 1 && n <= stria_core::header::MAX_SHARERS);
    }
    let _ = h.verify_strip_data(0, &[]);
});
