// SPDX-License-Identifier: GPL-2.0

//! `stria`: assemble, stop and inspect stria arrays and manage their
//! volumes.

mod blkid;
mod control;
mod copy;
mod diff;
mod error;
mod format;
mod gc;
mod member;
mod probe;
mod scan;
#[path = "../../../drivers/block/stria/uapi.rs"]
#[allow(dead_code)]
mod uapi;
mod volume;

use clap::Parser;
use clap::Subcommand;
use error::Failure;
use serde::Serialize;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Administer stria log-structured RAID arrays.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write stria superblocks to new members (both copies on each).
    Create {
        /// Member block devices (or image files), in order.
        #[arg(required = true)]
        members: Vec<String>,
        /// RAID type of new stripes: 0, 1, 5 or 6 (default: 5, or 1 for
        /// two members).
        #[arg(long)]
        raid: Option<u8>,
        /// Strip size, in KiB (a multiple of 4).
        #[arg(long, default_value_t = 256)]
        strip: u32,
        /// Strips per stripe, parity included (default: all members).
        #[arg(long)]
        width: Option<u8>,
        /// A stripe group instead of the default one over every member:
        /// MEMBERS:RAID[:WIDTH[:STRIP_KIB]], members as indices or ranges
        /// ("0-3", "0,2,4-5"); repeat for up to 8 groups.
        #[arg(long = "group", value_name = "SPEC")]
        groups: Vec<String>,
        /// Name of the array.
        #[arg(long, default_value = "stria")]
        name: String,
        /// Use devices that hold a signature anyway (a filesystem, RAID or
        /// crypto member, partition table, stria member), erasing the
        /// foreign ones first as `wipefs -a` does.
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a member's superblock.
    Examine {
        /// The member (block device or image file).
        device: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Find and decode the stripe headers on a member or image.
    Dump {
        /// The member (block device or image file).
        device: String,
        /// Stop after this many headers.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Assemble an array from member block devices; prints its first volume.
    Assemble {
        /// Member block devices, in any order.
        #[arg(required_unless_present = "scan")]
        members: Vec<String>,
        /// Find every array whose members are all present and not yet
        /// assembled, and assemble each.
        #[arg(long, conflicts_with = "members")]
        scan: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop an array: its volumes go away and its members are released.
    Stop {
        /// The volume (/dev/striaN, striaN or N).
        #[arg(required_unless_present = "all")]
        volume: Option<String>,
        /// Stop every array that is not in use; fails if any is.
        #[arg(long, conflicts_with = "volume")]
        all: bool,
    },
    /// Show arrays, all of them or one.
    Status {
        /// The volume (/dev/striaN, striaN or N); all arrays if omitted.
        volume: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create, resize, delete and list the volumes of an array.
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Make, list, show, compare and delete instant copies of volumes.
    Copy {
        #[command(subcommand)]
        command: CopyCommand,
    },
    /// Collect free space now: move the live blocks out of the stripes
    /// that are mostly dead, until enough of the pool is free.
    Gc {
        /// The array: its number N or any of its volumes.
        array: String,
        /// Stop once this share of the pool is free, in percent.
        #[arg(long, value_name = "PCT", default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..=100))]
        until_free: u32,
        /// Rank stripes by space gained alone, not by cost-benefit.
        #[arg(long)]
        greedy: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CopyCommand {
    /// Make an instant copy of a volume, exactly as it is at this moment;
    /// prints the copy's block device.
    Create {
        /// The volume to copy: its device (/dev/striaNvM, /dev/striaN,
        /// striaNvM) or ARRAY/NAME.
        source: String,
        /// The copy's name: 1 to 31 characters out of A-Z a-z 0-9 . _ -,
        /// unique in the array.
        name: String,
        /// Copy metadata form: auto lets the driver pick by the size of
        /// the source's map.
        #[arg(long, value_enum, default_value_t = copy::FormArg::Auto)]
        form: copy::FormArg,
        /// Divergence map form (where the copy and its source may differ,
        /// for diffs): auto lets the driver pick by the volume's size and
        /// how much of the source is written.
        #[arg(long, value_enum, default_value_t = copy::TrackArg::Auto)]
        track: copy::TrackArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the copies of an array, or of every array.
    List {
        /// The array: its number N or any of its volumes; all arrays if
        /// omitted.
        array: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one copy: its source, copy point, map form and sharing.
    Show {
        /// The copy: its device or ARRAY/NAME.
        copy: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a copy; blocks it shares with other volumes stay theirs.
    Delete {
        /// The copy: its device or ARRAY/NAME.
        copy: String,
    },
    /// Show where two volumes of an array differ (for a copy and its
    /// source: what either side changed since the copy), as byte extents.
    Diff {
        /// A volume: its device or ARRAY/NAME.
        volume: String,
        /// The volume to compare it with, in the same array.
        other: String,
        /// Compare the maps whole, not looking at the copy's divergence
        /// map.
        #[arg(long)]
        maps: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum VolumeCommand {
    /// Create a thin volume in an array; prints its block device.
    Create {
        /// The array: its number N or any of its volumes (/dev/striaN,
        /// striaN, /dev/striaNvM, striaNvM).
        array: String,
        /// The volume's name: 1 to 31 characters out of A-Z a-z 0-9 . _ -,
        /// unique in the array.
        name: String,
        /// Size: bytes, or a number with K, M, G, T or P (powers of 1024);
        /// a multiple of 4 KiB.
        #[arg(long, value_name = "SIZE")]
        size: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Grow or shrink a volume; shrinking drops the data beyond the new end.
    Resize {
        /// The volume: its device (/dev/striaNvM, /dev/striaN, striaNvM) or
        /// ARRAY/NAME.
        volume: String,
        /// New size: bytes, or a number with K, M, G, T or P; a multiple of
        /// 4 KiB.
        #[arg(long, value_name = "SIZE")]
        size: String,
    },
    /// Delete a volume and its data; refused while it is open.
    Delete {
        /// The volume: its device (/dev/striaNvM, /dev/striaN, striaNvM) or
        /// ARRAY/NAME.
        volume: String,
    },
    /// List the volumes of an array, or of every array.
    List {
        /// The array: its number N or any of its volumes; all arrays if
        /// omitted.
        array: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// One array as `status` reports it.
#[derive(Serialize)]
struct ArrayReport {
    volume: String,
    index: u32,
    array_uuid: String,
    name: String,
    layout: &'static str,
    chunk_kib: u32,
    size_bytes: u64,
    open_count: u32,
    members: Vec<MemberReport>,
    reads: u64,
    writes: u64,
    flushes: u64,
    errors: u64,
    mapped_blocks: u64,
    map_bytes: u64,
    map_bytes_per_block: f64,
    stripes: u64,
    partial_stripes: u64,
    host_bytes_written: u64,
    member_bytes_written: u64,
    /// Member bytes written per host byte; 0 before any write.
    write_amplification: f64,
    space: SpaceReport,
    /// Each volume's mapped blocks, shared and unique.
    volumes: Vec<volume::VolumeReport>,
}

/// Pool space, in bytes.
#[derive(Serialize)]
struct SpaceReport {
    pool_bytes: u64,
    free_bytes: u64,
    live_bytes: u64,
    reclaimable_bytes: u64,
    dying_bytes: u64,
    stripes_raid0: u64,
    stripes_raid1: u64,
    stripes_raid5: u64,
    stripes_raid6: u64,
    gc_stripes: u64,
    gc_moved_bytes: u64,
}

#[derive(Serialize)]
struct MemberReport {
    device: String,
    size_bytes: u64,
    free_bytes: u64,
}

fn report(st: &uapi::Status) -> ArrayReport {
    let n = (st.nr_members as usize).min(st.members.len());
    let name_len = st
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(st.name.len());
    ArrayReport {
        volume: format!("/dev/stria{}", st.index),
        index: st.index,
        volumes: Vec::new(),
        array_uuid: uuid::Uuid::from_bytes(st.array_uuid)
            .hyphenated()
            .to_string(),
        name: String::from_utf8_lossy(&st.name[..name_len]).into_owned(),
        layout: match st.layout {
            uapi::LAYOUT_RAID0 => "raid0",
            uapi::LAYOUT_LOG => "log",
            _ => "unknown",
        },
        chunk_kib: st.chunk_sectors / 2,
        size_bytes: st.capacity_sectors * 512,
        open_count: st.open_count,
        members: st.members[..n]
            .iter()
            .map(|m| MemberReport {
                device: control::device_name(m.major, m.minor),
                size_bytes: m.sectors * 512,
                free_bytes: m.free_sectors * 512,
            })
            .collect(),
        reads: st.reads,
        writes: st.writes,
        flushes: st.flushes,
        errors: st.errors,
        mapped_blocks: st.map_blocks,
        map_bytes: st.map_bytes,
        map_bytes_per_block: per_block(st.map_bytes, st.map_blocks),
        stripes: st.stripes,
        partial_stripes: st.partial_stripes,
        host_bytes_written: st.host_blocks * BLOCK_BYTES,
        member_bytes_written: st.member_blocks * BLOCK_BYTES,
        write_amplification: per_block(st.member_blocks, st.host_blocks),
        space: SpaceReport {
            pool_bytes: st.pool_blocks * BLOCK_BYTES,
            free_bytes: st.free_blocks * BLOCK_BYTES,
            live_bytes: st.live_blocks * BLOCK_BYTES,
            reclaimable_bytes: st.reclaimable_blocks * BLOCK_BYTES,
            dying_bytes: st.dying_blocks * BLOCK_BYTES,
            stripes_raid0: st.raid_stripes[0],
            stripes_raid1: st.raid_stripes[1],
            stripes_raid5: st.raid_stripes[2],
            stripes_raid6: st.raid_stripes[3],
            gc_stripes: st.gc_stripes,
            gc_moved_bytes: st.gc_moved_blocks * BLOCK_BYTES,
        },
    }
}

/// Bytes per 4 KiB block, the unit of the block counters in STATUS.
pub(crate) const BLOCK_BYTES: u64 = 4096;

/// Map memory per mapped block; 0 for an empty map.
pub(crate) fn per_block(bytes: u64, blocks: u64) -> f64 {
    if blocks == 0 {
        0.0
    } else {
        bytes as f64 / blocks as f64
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn print_report(r: &ArrayReport) {
    println!(
        "{}: array {} ({}), {} {} KiB strips, {} ({} bytes), open {}",
        r.volume,
        r.array_uuid,
        r.name,
        r.layout,
        r.chunk_kib,
        human(r.size_bytes),
        r.size_bytes,
        r.open_count
    );
    for (i, m) in r.members.iter().enumerate() {
        println!(
            "  member {i}: {} {}, {} free",
            m.device,
            human(m.size_bytes),
            human(m.free_bytes)
        );
    }
    println!(
        "  io: {} reads, {} writes, {} flushes, {} errors",
        r.reads, r.writes, r.flushes, r.errors
    );
    println!(
        "  map: {} blocks mapped, {} ({:.2} bytes per block)",
        r.mapped_blocks,
        human(r.map_bytes),
        r.map_bytes_per_block
    );
    println!(
        "  stripes: {} written, {} closed part full by flushes",
        r.stripes, r.partial_stripes
    );
    println!(
        "  written: {} by the host, {} to the members (write amplification {:.2})",
        human(r.host_bytes_written),
        human(r.member_bytes_written),
        r.write_amplification
    );
    let s = &r.space;
    println!(
        "  pool: {} of {} free, {} live, {} reclaimable, {} freed at the next flush",
        human(s.free_bytes),
        human(s.pool_bytes),
        human(s.live_bytes),
        human(s.reclaimable_bytes),
        human(s.dying_bytes)
    );
    println!(
        "  stripes on the members: {} RAID-5, {} RAID-6, {} RAID-1, {} RAID-0",
        s.stripes_raid5, s.stripes_raid6, s.stripes_raid1, s.stripes_raid0
    );
    println!(
        "  free-space collection: {} stripes emptied, {} moved",
        s.gc_stripes,
        human(s.gc_moved_bytes)
    );
    for v in &r.volumes {
        let copy = v
            .copy_of
            .map(|id| format!(", copy of volume {id}"))
            .unwrap_or_default();
        println!(
            "  volume {} ({}): {} mapped, {} shared with other volumes, {} unique{copy}",
            v.id,
            v.name,
            human(v.mapped_blocks * volume::BLOCK_BYTES),
            human(v.shared_blocks * volume::BLOCK_BYTES),
            human(v.unique_blocks * volume::BLOCK_BYTES),
        );
    }
}

/// Runs `f` with a spinner, the elapsed time and `msg` on stderr when it
/// is a terminal that can draw one.
fn with_spinner<T>(msg: &'static str, f: impl FnOnce() -> T) -> T {
    let dumb = std::env::var_os("TERM").is_none_or(|t| t == "dumb");
    if dumb || !std::io::stderr().is_terminal() {
        return f();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(msg);
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let r = f();
    bar.finish_and_clear();
    r
}

/// `assemble --scan`: every complete array that is not running yet.
fn assemble_scan(ctl: &control::Control, json: bool) -> Result<(), Failure> {
    let running: Vec<[u8; 16]> = ctl.all()?.iter().map(|s| s.array_uuid).collect();
    let mut done = Vec::new();
    let mut failed = None;
    for a in scan::scan() {
        let uuid = uuid::Uuid::from_bytes(a.uuid).hyphenated().to_string();
        if running.contains(&a.uuid) {
            continue;
        }
        if a.members.len() != usize::from(a.member_count) {
            eprintln!(
                "stria: array {uuid} ({}): {} of {} members found, not assembled",
                a.name,
                a.members.len(),
                a.member_count
            );
            continue;
        }
        let paths: Vec<String> = a.members.iter().map(|m| m.path.clone()).collect();
        match with_spinner("assembling: scanning the members' stripe headers", || {
            ctl.assemble(&paths)
        }) {
            Ok(index) => {
                if !json {
                    println!(
                        "/dev/stria{index}: array {uuid} ({}) from {}",
                        a.name,
                        paths.join(" ")
                    );
                }
                done.push(serde_json::json!({
                    "volume": format!("/dev/stria{index}"),
                    "index": index,
                    "array_uuid": uuid,
                    "name": a.name,
                    "members": paths,
                }));
            }
            Err(e) => {
                eprintln!("stria: {e}");
                failed = Some(e);
            }
        }
    }
    if json {
        print_json(&done)?;
    } else if done.is_empty() && failed.is_none() {
        println!("nothing to assemble");
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn print_json(v: &impl Serialize) -> Result<(), Failure> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(Failure::other)?
    );
    Ok(())
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Create {
            members,
            raid,
            strip,
            width,
            groups,
            name,
            force,
            json,
        } => {
            let r = format::create(&format::CreateArgs {
                devices: members,
                raid,
                strip_kib: strip,
                width,
                groups,
                name,
                force,
            })?;
            if json {
                print_json(&r)?;
            } else {
                format::print_create(&r);
            }
        }
        Command::Examine { device, json } => {
            let r = format::examine(&device)?;
            if json {
                print_json(&r)?;
            } else {
                format::print_examine(&r);
            }
        }
        Command::Dump {
            device,
            limit,
            json,
        } => {
            let r = format::dump(&device, limit)?;
            if json {
                print_json(&r)?;
            } else {
                format::print_dump(&r);
            }
        }
        Command::Assemble {
            members,
            scan,
            json,
        } => {
            let ctl = control::Control::open()?;
            if scan {
                return assemble_scan(&ctl, json);
            }
            // The kernel scans every member's stripe headers before the
            // call returns: show that it is working on a terminal.
            let index = with_spinner("assembling: scanning the members' stripe headers", || {
                ctl.assemble(&members)
            })?;
            // Volume 1 may have been deleted (its copies kept): then the
            // first volume there is.
            let volume = ctl
                .volume_ids(index)?
                .and_then(|vs| volume::reports(&vs).into_iter().find_map(|v| v.device))
                .unwrap_or_else(|| format!("/dev/stria{index}"));
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "volume": volume, "index": index })
                );
            } else {
                println!("{volume}");
            }
        }
        Command::Stop { volume, all } => {
            let ctl = control::Control::open()?;
            if all {
                let mut failed = 0;
                for st in ctl.all()? {
                    if let Err(e) = ctl.stop(st.index) {
                        eprintln!("stria: {e}");
                        failed += 1;
                    }
                }
                if failed > 0 {
                    return Err(Failure::msg(format!(
                        "stop --all: {failed} arrays not stopped"
                    )));
                }
            } else if let Some(v) = volume {
                ctl.stop(control::parse_volume(&v)?)?;
            }
        }
        Command::Status { volume, json } => {
            let ctl = control::Control::open()?;
            let arrays = match volume {
                Some(v) => vec![ctl.status(control::parse_volume(&v)?)?],
                None => ctl.all()?,
            };
            let mut reports: Vec<_> = arrays.iter().map(report).collect();
            for r in reports.iter_mut() {
                if let Some(vs) = ctl.volumes(r.index)? {
                    r.volumes = volume::reports(&vs);
                }
            }
            if json {
                print_json(&reports)?;
            } else if reports.is_empty() {
                println!("no arrays");
            } else {
                reports.iter().for_each(print_report);
            }
        }
        Command::Volume { command } => run_volume(command)?,
        Command::Copy { command } => run_copy(command)?,
        Command::Gc {
            array,
            until_free,
            greedy,
            json,
        } => {
            let r = gc::run(&array, until_free, greedy)?;
            if json {
                print_json(&r)?;
            } else {
                gc::print(&r);
            }
        }
    }
    Ok(())
}

fn run_copy(cmd: CopyCommand) -> Result<(), Failure> {
    match cmd {
        CopyCommand::Create {
            source,
            name,
            form,
            track,
            json,
        } => {
            let r = copy::create(&source, &name, form, track)?;
            if json {
                print_json(&r)?;
            } else {
                println!("{}", r.device);
            }
        }
        CopyCommand::List { array, json } => {
            let r = copy::list(array.as_deref())?;
            if json {
                print_json(&r)?;
            } else if r.is_empty() {
                println!("no copies");
            } else {
                copy::print(&r);
            }
        }
        CopyCommand::Show { copy: c, json } => {
            let r = copy::show(&c)?;
            if json {
                print_json(&r)?;
            } else {
                copy::print(std::slice::from_ref(&r));
            }
        }
        CopyCommand::Delete { copy: c } => copy::delete(&c)?,
        CopyCommand::Diff {
            volume,
            other,
            maps,
            json,
        } => {
            let r = diff::diff(&volume, &other, maps)?;
            if json {
                print_json(&r)?;
            } else {
                diff::print(&r);
            }
        }
    }
    Ok(())
}

fn run_volume(cmd: VolumeCommand) -> Result<(), Failure> {
    match cmd {
        VolumeCommand::Create {
            array,
            name,
            size,
            json,
        } => {
            let r = volume::create(&array, &name, &size)?;
            if json {
                print_json(&r)?;
            } else {
                println!("{}", r.device);
            }
        }
        VolumeCommand::Resize { volume, size } => volume::resize(&volume, &size)?,
        VolumeCommand::Delete { volume } => volume::delete(&volume)?,
        VolumeCommand::List { array, json } => {
            let r = volume::list(array.as_deref())?;
            if json {
                print_json(&r.unwrap_or_default())?;
            } else {
                match r {
                    None => println!("no arrays"),
                    Some(v) if v.is_empty() => println!("no volumes"),
                    Some(v) => volume::print_list(&v),
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`stria status | head`), as C tools do.
    // SAFETY: Nothing else handles signals in this single-threaded program.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("stria: {f}");
            ExitCode::FAILURE
        }
    }
}
