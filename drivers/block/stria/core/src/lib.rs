// SPDX-License-Identifier: GPL-2.0

//! stria on-disk format core.
//!
//! Pure functions over byte slices: the superblock and stripe header
//! codecs, stripe geometry, CRC32C and RAID-5/6 parity. The same source
//! files are compiled into the kernel driver (as an inline module, which is
//! why they refer to each other through `super::`) and, through this crate
//! root, into host tests, fuzzers, benchmarks and the userspace helper.
//!
//! Nothing here allocates, uses `unsafe`, or panics on any input: every
//! inconsistency in bytes read from a member is a [`error::FormatError`].

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The lints the kernel build enables, so that host builds catch first what
// would warn there.
#![warn(
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn,
    clippy::ignored_unit_patterns,
    clippy::mut_mut,
    clippy::needless_bitwise_bool,
    clippy::needless_continue,
    clippy::float_arithmetic
)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::todo,
    clippy::unimplemented,
    clippy::unreachable
)]

#[cfg(test)]
extern crate std;

pub mod crc;
pub mod error;
pub mod geometry;
pub mod gf;
pub mod header;
pub mod le;
pub mod parity;
pub mod superblock;
pub mod uuid;
pub mod vectors;
