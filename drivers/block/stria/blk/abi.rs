// SPDX-License-Identifier: GPL-2.0

//! The ioctl structures of [`crate::uapi`] as plain bytes, so that the
//! control device copies them to and from user space whole
//! (`UserSliceReader::read`, `UserSliceWriter::write`).
//!
//! Every structure there is `#[repr(C)]` and has only `u32`, `u64` and
//! arrays of those, of `u8` or of another such structure as fields, laid
//! out with no padding: the helper's build derives `zerocopy::IntoBytes`
//! for the very same definitions, which does not compile for a type with
//! padding, and its tests compare every offset with the C header.

use crate::uapi;
use kernel::transmute::AsBytes;
use kernel::transmute::FromBytes;
use pin_init::Zeroable;

/// Implements [`FromBytes`], [`AsBytes`] and [`Zeroable`] for plain ioctl
/// structures.
macro_rules! plain {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: Safety comment written in the macro invocation.
            unsafe impl FromBytes for $t {}
            // SAFETY: Safety comment written in the macro invocation.
            unsafe impl AsBytes for $t {}
            // SAFETY: Safety comment written in the macro invocation.
            unsafe impl Zeroable for $t {}
        )*
    };
}

// Each type is `repr(C)` with the fields listed and no padding.  Integers,
// arrays of them and arrays of the other types here take any bit pattern,
// zero included (`FromBytes`, `Zeroable`), leave no byte of a value
// uninitialised (`AsBytes`), and have no interior mutability.
plain! {
    // SAFETY: `u32` ×4, `u64`, `[u64; 4]` (56 bytes, no padding).
    uapi::Assemble,
    // SAFETY: `u32` ×4 (16 bytes, no padding).
    uapi::Stop,
    // SAFETY: `u32` ×2, `u64` ×3 (32 bytes, no padding).
    uapi::MemberInfo,
    // SAFETY: `u32` ×8, `u64` ×5, `[u8; 16]`, `[u8; 64]`, `u64` ×11,
    // `[u64; 4]`, `u64` ×2, `[MemberInfo; 32]` (1312 bytes, no padding).
    uapi::Status,
    // SAFETY: `u32` ×6, `u64`, `[u8; 32]`, `u32` ×2, `u64` (80 bytes, no
    // padding).
    uapi::Volume,
    // SAFETY: `u32` ×2, `u64` ×3, `[u8; 32]` ×2, `u32` ×2, `u64` ×3,
    // `u32` ×4, `u64` ×2 (160 bytes, no padding).
    uapi::VolumeInfo,
    // SAFETY: `u32` ×4, `[VolumeInfo; 64]` (10256 bytes, no padding).
    uapi::Volumes,
    // SAFETY: `u32` ×4, `u64` ×2, `[u64; 2]` (48 bytes, no padding).
    uapi::Gc,
    // SAFETY: `u32` ×6, `u64` ×5 (64 bytes, no padding).
    uapi::Diff,
}
