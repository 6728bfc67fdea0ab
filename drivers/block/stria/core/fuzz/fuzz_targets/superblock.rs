// SPDX-License-Identifier: GPL-2.0

//! Superblock decoding of arbitrary bytes, with and without a repaired
//! checksum (without the repair the fuzzer would rarely get past the CRC).

#![no_main]

use libfuzzer_sys::fuzz_target;
use stria_core::crc;
use stria_core::le;
use stria_core::superblock;
use stria_core::superblock::Superblock;
use stria_core::superblock::SB_BYTES;

fuzz_target!(|data: &[u8]| {
    let raw = Superblock::decode(data);

    let mut buf = vec![0u8; SB_BYTES];
    let n = data.len().min(SB_BYTES);
    buf[..n].copy_from_slice(&data[..n]);
    if let Some(sum) = crc::crc32c_skip_field(&buf, superblock::off::CRC) {
        le::put_u32(&mut buf, superblock::off::CRC, sum).unwrap();
    }
    let sealed = Superblock::decode(&buf);

    if let Ok(sb) = &sealed {
        // Whatever decodes must encode back to the same bytes it came from,
        // except for the reserved bytes the decoder ignores.
        let mut again = vec![0u8; SB_BYTES];
        sb.encode(&mut again).unwrap();
        assert_eq!(Superblock::decode(&again).as_ref(), Ok(sb));
        let _ = sb.needs_read_only();
        let _ = sb.volume(1);
        let _ = superblock::name_str(&sb.array_name);
    }
    let _ = superblock::pick_newest(
        raw.as_ref().map_err(|e| *e),
        sealed.as_ref().map_err(|e| *e),
    );
    if data.len() >= 8 {
        let blocks = u64::from_le_bytes(data[..8].try_into().unwrap());
        if let Ok(l) = superblock::locations(blocks) {
            assert!(l.primary_block < l.data_start);
            assert!(l.data_start < l.data_end);
            assert!(l.data_end <= l.backup_block);
            assert!(l.backup_block < blocks);
        }
    }
});
