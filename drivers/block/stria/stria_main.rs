// SPDX-License-Identifier: GPL-2.0

//! stria: log-structured RAID volumes over pooled block devices.
//!
//! An array pools its members into a volume whose writes are laid down
//! log-structured, in RAID stripes allocated as they fill, each carrying a
//! header that describes it; the volume's map is rebuilt from those headers
//! at assembly.  Arrays are assembled and stopped through the ioctls of
//! `/dev/stria-control` (see `include/uapi/linux/stria.h`).

// The rules the whole driver keeps: no `unsafe` but in `blk`, and no panic on
// whatever a member or user space hands it.
#![deny(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod alloc;
mod array;
#[allow(unsafe_code)]
mod blk;
mod control;
mod format_kunit;
mod gc;
mod map;
mod members;
mod reads;
mod rebuild;
mod timed;
mod volume;
mod writer;

/// The on-disk format core, shared byte for byte with the helper; its host
/// crate root is `core/src/lib.rs`, which lists the same modules.
#[path = "core/src"]
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
// Shared with the user-space helper, which uses the other half of it.
#[allow(dead_code)]
mod uapi;

use blk::misc::MiscDevice;
use control::Controller;
use kernel::prelude::*;

module! {
    type: StriaModule,
    name: "stria",
    authors: ["The stria developers"],
    description: "Log-structured RAID volumes over pooled block devices",
    license: "GPL",
}

#[pin_data]
struct StriaModule {
    #[pin]
    control: MiscDevice<Controller>,
    /// Dropped after the control device, and with it every array: its
    /// destruction runs what their workers still had queued.
    _queue: blk::wq::Registration,
}

impl kernel::InPlaceModule for StriaModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let controller = Controller::new();
        try_pin_init!(Self {
            _queue: blk::wq::Registration::new()?,
            control <- MiscDevice::register(c"stria-control", controller?),
        })
    }
}
