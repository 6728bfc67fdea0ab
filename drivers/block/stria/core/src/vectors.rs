// SPDX-License-Identifier: GPL-2.0

//! Known-answer vectors shared by the host tests and the kernel's KUnit
//! suite.
//!
//! The answers were computed independently of this code: the CRC32C values
//! are the published iSCSI (RFC 3720) and "check" values, and the RAID-6
//! syndromes were worked out with a bit-serial GF(2^8) multiply over
//! polynomial 0x11d.

/// One CRC32C known answer.
pub struct CrcVector {
    /// Input bytes.
    pub input: &'static [u8],
    /// Expected [`super::crc::crc32c`] of `input`.
    pub crc: u32,
}

/// 32 bytes counting up from 0.
#[allow(clippy::indexing_slicing)] // Evaluated at compile time.
const ASCENDING: [u8; 32] = {
    let mut a = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        a[i] = i as u8;
        i += 1;
    }
    a
};

/// 32 bytes counting down to 0.
#[allow(clippy::indexing_slicing)] // Evaluated at compile time.
const DESCENDING: [u8; 32] = {
    let mut a = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        a[i] = 31 - i as u8;
        i += 1;
    }
    a
};

/// CRC32C known answers.
pub const CRC32C: [CrcVector; 6] = [
    CrcVector { input: b"", crc: 0 },
    CrcVector {
        input: b"123456789",
        crc: 0xE306_9283,
    },
    CrcVector {
        input: &[0; 32],
        crc: 0x8A91_36AA,
    },
    CrcVector {
        input: &[0xff; 32],
        crc: 0x62A8_AB43,
    },
    CrcVector {
        input: &ASCENDING,
        crc: 0x46DD_794E,
    },
    CrcVector {
        input: &DESCENDING,
        crc: 0x113F_DB5C,
    },
];

/// A RAID-6 known answer: three 8-byte data strips and their P and Q.
pub struct Raid6Vector {
    /// Data strips in data order (strip k is weighted by g^k in Q).
    pub data: [&'static [u8]; 3],
    /// Expected P (XOR of the data).
    pub p: [u8; 8],
    /// Expected Q.
    pub q: [u8; 8],
}

/// The RAID-6 known answer. The second strip exercises the reduction
/// (bytes 0x80, 0xff) and the third ordinary values.
pub const RAID6: Raid6Vector = Raid6Vector {
    data: [
        b"stria-D0",
        &[0x00, 0x01, 0x02, 0x80, 0xff, 0x55, 0xaa, 0x1d],
        &[0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67],
    ],
    p: [0xad, 0xd8, 0xce, 0x06, 0x9f, 0x5b, 0xab, 0x4a],
    q: [0x2c, 0xf8, 0xb4, 0xef, 0x86, 0x0b, 0x04, 0x8b],
};

/// g^8 in the RAID-6 field: the first power that wraps around the
/// polynomial, a one-line check that the right field is in use.
pub const GF_G8: u8 = 0x1d;
