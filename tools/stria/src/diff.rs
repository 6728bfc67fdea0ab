// SPDX-License-Identifier: GPL-2.0

//! `stria copy diff`: where two volumes differ, as byte extents.
//!
//! For a copy and its source the extents are what either side wrote or
//! trimmed since the copy point: what an incremental backup of one, made
//! from the other, has to read. The kernel answers from the copy's
//! divergence map where it has one (it compares the maps only where that
//! marked a change) and from the maps otherwise (shared pages and leaves
//! are passed over whole), a GiB per call.

use crate::control::Control;
use crate::copy;
use crate::error::Failure;
use crate::uapi;
use crate::volume;
use crate::volume::BLOCK_BYTES;
use indicatif::ProgressBar;
use indicatif::ProgressStyle;
use nix::errno::Errno;
use serde::Serialize;
use std::io::IsTerminal;

/// Bytes that differ, from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Extent {
    /// From the start of the volumes.
    pub offset: u64,
    /// Bytes.
    pub length: u64,
}

/// What `copy diff` found.
#[derive(Serialize)]
pub struct DiffReport {
    /// The array's number.
    pub array: u32,
    /// The first volume's name.
    pub volume: String,
    /// The second volume's name.
    pub other: String,
    /// Bytes compared: the smaller of the two sizes.
    pub compared_bytes: u64,
    /// Bytes that differ.
    pub differ_bytes: u64,
    /// How the kernel found them: `divergence-map`, or `maps` if it
    /// compared the maps whole for any part.
    pub method: &'static str,
    /// Where, in order.
    pub extents: Vec<Extent>,
}

/// Adds the blocks whose bits are set in `bits`, the first of which is
/// block `first`, to `out`, joining runs that touch.
fn add_runs(out: &mut Vec<Extent>, first: u64, nr: u64, bits: &[u8]) {
    let mut b = 0;
    while b < nr {
        let set = |b: u64| {
            bits.get((b / 8) as usize)
                .is_some_and(|x| x & (1 << (b % 8)) != 0)
        };
        if !set(b) {
            b += 1;
            continue;
        }
        let from = b;
        while b < nr && set(b) {
            b += 1;
        }
        let (offset, length) = ((first + from) * BLOCK_BYTES, (b - from) * BLOCK_BYTES);
        match out.last_mut() {
            Some(e) if e.offset + e.length == offset => e.length += length,
            _ => out.push(Extent { offset, length }),
        }
    }
}

/// `stria copy diff VOLUME OTHER [--maps]`.
pub fn diff(a: &str, b: &str, maps: bool) -> Result<DiffReport, Failure> {
    let what = format!("copy diff {a} {b}");
    let (va, vb) = (volume::parse_volume(a)?, volume::parse_volume(b)?);
    let index = copy::index_of(&va);
    if copy::index_of(&vb) != index {
        return Err(Failure::errno(
            format!("{what}: the volumes are in different arrays"),
            Errno::EINVAL,
        ));
    }
    let ctl = Control::open()?;
    let all = copy::volumes_of(&ctl, index, false, &what)?;
    let (ra, rb) = match (copy::find(&all, &va), copy::find(&all, &vb)) {
        (Some(x), Some(y)) => (x, y),
        _ => return Err(Failure::errno(&what, Errno::ENOENT)),
    };
    let blocks = ra.size_bytes.min(rb.size_bytes) / BLOCK_BYTES;
    let bar = if std::io::stderr().is_terminal() {
        let p = ProgressBar::new(blocks * BLOCK_BYTES);
        p.set_style(
            ProgressStyle::with_template("comparing {bar:30} {bytes}/{total_bytes} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        p
    } else {
        ProgressBar::hidden()
    };
    let mut bits = vec![0u8; uapi::DIFF_MAX_BLOCKS.div_ceil(8) as usize];
    let mut extents = Vec::new();
    let mut differ = 0;
    let mut by_maps = false;
    let mut start = 0;
    while start < blocks {
        let nr = (blocks - start).min(uapi::DIFF_MAX_BLOCKS);
        bits.fill(0);
        let req = uapi::Diff {
            index,
            id: ra.id,
            other: rb.id,
            start,
            nr_blocks: nr,
            flags: if maps { uapi::DIFF_MAPS } else { 0 },
            ..Default::default()
        };
        let got = ctl.diff(&req, &mut bits, &what)?;
        differ += got.changed;
        by_maps |= got.how != uapi::DIFF_BY_TRACK;
        add_runs(&mut extents, start, nr, &bits);
        start += nr;
        bar.set_position(start * BLOCK_BYTES);
    }
    bar.finish_and_clear();
    Ok(DiffReport {
        array: index,
        volume: ra.name.clone(),
        other: rb.name.clone(),
        compared_bytes: blocks * BLOCK_BYTES,
        differ_bytes: differ * BLOCK_BYTES,
        method: if by_maps { "maps" } else { "divergence-map" },
        extents,
    })
}

/// Prints `r` for people: an extent per line, then a summary.
pub fn print(r: &DiffReport) {
    println!("{:>16} {:>16}", "OFFSET", "LENGTH");
    for e in &r.extents {
        println!("{:>16} {:>16}", e.offset, e.length);
    }
    println!(
        "{} and {}: {} extents, {} of {} differ (by {})",
        r.volume,
        r.other,
        r.extents.len(),
        crate::human(r.differ_bytes),
        crate::human(r.compared_bytes),
        r.method
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_join_across_calls() {
        let mut out = Vec::new();
        // Blocks 1-2 and 7 of the first call, 0 and 3 of the second.
        add_runs(&mut out, 0, 8, &[0b1000_0110]);
        add_runs(&mut out, 8, 8, &[0b0000_1001]);
        let b = BLOCK_BYTES;
        assert_eq!(
            out,
            [
                Extent {
                    offset: b,
                    length: 2 * b
                },
                Extent {
                    offset: 7 * b,
                    length: 2 * b
                },
                Extent {
                    offset: 11 * b,
                    length: b
                },
            ]
        );
        // Bits past `nr` are not looked at.
        let mut out = Vec::new();
        add_runs(&mut out, 0, 3, &[0b1111_1000]);
        assert!(out.is_empty());
    }
}
