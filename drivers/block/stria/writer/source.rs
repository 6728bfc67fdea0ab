// SPDX-License-Identifier: GPL-2.0

//! What a packed range carries (host data, trims, blocks collection
//! moves) and which volumes of a copy tree share it.

use super::Volume;
use crate::map::Entry;
use kernel::sync::Arc;

/// Host data as the writer takes it: whatever holds it (a request of
/// some volume's device) copies pieces out, so the writer need not know
/// the device.
pub(crate) trait HostData {
    /// Copies `dst.len()` bytes from byte `offset` on into `dst`; `false`
    /// if the data ends first.
    fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool;
}

/// What a range packed by [`Writer::write`] carries.
pub(crate) enum Source<'a> {
    /// Host data, the range's first block at its first byte.
    Host(&'a dyn HostData),
    /// A discard or write-zeroes: trim records.
    Trim,
    /// Blocks of a stripe being collected, the range's first at `data`'s
    /// first byte: each moves for every volume of `family` whose map entry
    /// still points at `block` (plus its index) on `member`.
    Moved {
        /// The blocks' data.
        data: &'a [u8],
        /// Member they are on.
        member: u8,
        /// Member block of the first.
        block: u64,
        /// The volume and its copies (at most [`MAX_FAMILY`]), as they
        /// were when [`Writer::copies`] said `copies`.
        family: &'a [Arc<Volume>],
        /// See `family`.
        copies: u64,
    },
    /// Trim records of a stripe being collected: kept for the volumes of
    /// `family` where the range is still unmapped.
    Retrim {
        /// The volume and its copies (at most [`MAX_FAMILY`]), as they
        /// were when [`Writer::copies`] said `copies`.
        family: &'a [Arc<Volume>],
        /// See `family`.
        copies: u64,
    },
}

/// Volumes of one copy tree in service at most: every volume the table
/// holds. One piece moved by free-space collection stands for all that
/// share its blocks.
pub(crate) const MAX_FAMILY: usize = crate::format::header::MAX_SHARERS;

const _: () = assert!(MAX_FAMILY <= u64::BITS as usize);

/// Which volumes of `family` (bit `j` for `family[j]`) have block `lba`
/// where `want` says.
pub(super) fn family_mask(family: &[Arc<Volume>], lba: u64, want: Entry) -> u64 {
    let mut mask = 0u64;
    for (j, v) in family.iter().enumerate().take(MAX_FAMILY) {
        if v.map.lock().get(lba) == want {
            mask |= 1 << j;
        }
    }
    mask
}

/// The ids of the volumes of `mask` in `family`, the first apart.
pub(super) fn family_ids(family: &[Arc<Volume>], mask: u64) -> (u32, [u32; MAX_FAMILY], usize) {
    let mut first = 0u32;
    let mut also = [0u32; MAX_FAMILY];
    let mut n = 0usize;
    for (j, v) in family.iter().enumerate().take(MAX_FAMILY) {
        if mask & (1 << j) == 0 {
            continue;
        }
        if first == 0 {
            first = v.id;
        } else if let Some(a) = also.get_mut(n) {
            *a = v.id;
            n += 1;
        }
    }
    (first, also, n)
}

impl Source<'_> {
    /// Whether it must leave the chunks kept for free-space collection
    /// alone: host data must; trims free space, and collection is what
    /// the chunks are for.
    pub(super) fn spares_reserve(&self) -> bool {
        matches!(self, Source::Host(_))
    }
}
