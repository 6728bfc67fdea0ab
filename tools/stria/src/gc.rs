// SPDX-License-Identifier: GPL-2.0

//! `stria gc`: free-space collection on demand.

use crate::control::Control;
use crate::error::Failure;
use crate::uapi;
use crate::BLOCK_BYTES;
use serde::Serialize;
use std::io::IsTerminal;
use std::time::Duration;

/// What a run did.
#[derive(Serialize)]
pub struct GcReport {
    /// The array's first volume.
    pub volume: String,
    /// Stripes emptied.
    pub stripes: u64,
    /// Member bytes freed.
    pub freed_bytes: u64,
    /// Share of the pool free afterwards, in percent.
    pub free_percent: f64,
}

fn free_percent(st: &uapi::Status) -> f64 {
    if st.pool_blocks == 0 {
        0.0
    } else {
        st.free_blocks as f64 * 100.0 / st.pool_blocks as f64
    }
}

/// Collects free space on `array` until `until_free` percent of its pool
/// is free or nothing is worth collecting; shows a progress bar on a
/// terminal meanwhile.
pub fn run(array: &str, until_free: u32, greedy: bool) -> Result<GcReport, Failure> {
    let index = crate::volume::parse_array(array)?;
    let ctl = Control::open()?;
    let before = ctl.status(index)?;
    let req = uapi::Gc {
        flags: if greedy { uapi::GC_GREEDY } else { 0 },
        index,
        until_free_percent: until_free,
        ..Default::default()
    };
    let dumb = std::env::var_os("TERM").is_none_or(|t| t == "dumb");
    let out = if dumb || !std::io::stderr().is_terminal() {
        ctl.gc(&req)?
    } else {
        with_progress(&ctl, &req, &before)?
    };
    let after = ctl.status(index)?;
    Ok(GcReport {
        volume: format!("/dev/stria{index}"),
        stripes: out.stripes,
        freed_bytes: out.freed_blocks * BLOCK_BYTES,
        free_percent: free_percent(&after),
    })
}

/// Runs `req` in a thread while a bar shows free space rising towards the
/// target, from STATUS (which answers while collection runs).
fn with_progress(
    ctl: &Control,
    req: &uapi::Gc,
    before: &uapi::Status,
) -> Result<uapi::Gc, Failure> {
    let target = before.pool_blocks / 100 * u64::from(req.until_free_percent);
    let bar = indicatif::ProgressBar::new(target.saturating_sub(before.free_blocks) * BLOCK_BYTES);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "collecting {bar:30} {bytes}/{total_bytes} freed {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let r = std::thread::scope(|s| {
        let job = s.spawn(|| ctl.gc(req));
        while !job.is_finished() {
            if let Ok(st) = ctl.status(req.index) {
                let freed = st.free_blocks.saturating_sub(before.free_blocks);
                bar.set_position(freed * BLOCK_BYTES);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        job.join()
            .unwrap_or_else(|_| Err(Failure::msg("gc: the collecting thread died")))
    });
    bar.finish_and_clear();
    r
}

/// Prints `r` for people.
pub fn print(r: &GcReport) {
    println!(
        "{}: {} stripes emptied, {:.1} MiB freed, {:.1}% of the pool free",
        r.volume,
        r.stripes,
        r.freed_bytes as f64 / 1048576.0,
        r.free_percent
    );
}
