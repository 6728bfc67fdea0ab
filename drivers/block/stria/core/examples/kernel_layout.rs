// SPDX-License-Identifier: GPL-2.0

//! Builds the format sources the way the kernel driver includes them: as
//! an inline child module of another crate, reached through `#[path]`, so
//! that a stray `crate::` path or crate-level attribute fails on the host
//! before it reaches a kernel build.
//!
//! In the kernel, `-Wunreachable_pub` and dead-code analysis would flag the
//! `pub` items of such a private module, hence the `allow` on it.

#![deny(warnings)]

#[path = "../src"]
#[allow(dead_code, unreachable_pub)]
mod format {
    pub(crate) mod crc;
    pub(crate) mod error;
    pub(crate) mod geometry;
    pub(crate) mod gf;
    pub(crate) mod header;
    pub(crate) mod le;
    pub(crate) mod parity;
    pub(crate) mod superblock;
    pub(crate) mod uuid;
    pub(crate) mod vectors;
}

fn main() {
    let v = &format::vectors::CRC32C[1];
    assert_eq!(format::crc::crc32c(v.input), v.crc);
    assert!(format::geometry::raid0_map(9, 2, 4).is_ok());
}
