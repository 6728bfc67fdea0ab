// SPDX-License-Identifier: GPL-2.0

//! `create`, `examine` and `dump`: the on-disk format, through the same
//! core the kernel module uses.

use crate::error::Failure;
use crate::member::Member;
use indicatif::ProgressBar;
use indicatif::ProgressStyle;
use serde::Serialize;
use std::io::IsTerminal;
use std::time::SystemTime;
use stria_core::geometry::RaidType;
use stria_core::geometry::MAX_MEMBERS;
use stria_core::header::looks_like_header;
use stria_core::header::StripeHeader;
use stria_core::header::HEADER_BYTES;
use stria_core::superblock;
use stria_core::superblock::MemberEntry;
use stria_core::superblock::MemberState;
use stria_core::superblock::StripeGroup;
use stria_core::superblock::Superblock;
use stria_core::superblock::VolumeEntry;
use stria_core::superblock::SB_BYTES;
use stria_core::uuid::Uuid;

/// What `create` is asked for.
pub struct CreateArgs {
    /// Members, in order.
    pub devices: Vec<String>,
    /// RAID type of new stripes; by member count when `None`.
    pub raid: Option<u8>,
    /// Strip size in KiB.
    pub strip_kib: u32,
    /// Strips per stripe; all members when `None`.
    pub width: Option<u8>,
    /// Explicit stripe groups (`MEMBERS:RAID[:WIDTH[:STRIP_KIB]]`).
    pub groups: Vec<String>,
    /// Array name.
    pub name: String,
    /// Wipe existing signatures and write anyway.
    pub force: bool,
}

/// What `create` did.
#[derive(Serialize)]
pub struct CreateReport {
    array_uuid: String,
    name: String,
    raid: u8,
    width: u8,
    strip_kib: u32,
    groups: Vec<GroupReport>,
    members: Vec<CreatedMember>,
}

/// Parses `MEMBERS:RAID[:WIDTH[:STRIP_KIB]]` for an array of `n` members.
pub fn parse_group(spec: &str, n: usize, default_strip_kib: u32) -> Result<StripeGroup, Failure> {
    let bad = |why: &str| Failure::msg(format!("--group {spec}: {why}"));
    let mut parts = spec.split(':');
    let members_s = parts.next().unwrap_or("");
    let raid_s = parts
        .next()
        .ok_or_else(|| bad("expected MEMBERS:RAID[:WIDTH[:STRIP_KIB]]"))?;
    let mut members = 0u32;
    for item in members_s.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a, b),
            None => (item, item),
        };
        let lo: usize = lo
            .trim()
            .parse()
            .map_err(|_| bad("member indices must be numbers"))?;
        let hi: usize = hi
            .trim()
            .parse()
            .map_err(|_| bad("member indices must be numbers"))?;
        if lo > hi || hi >= n {
            return Err(bad(&format!(
                "member range {item} is not within 0-{}",
                n - 1
            )));
        }
        for i in lo..=hi {
            members |= 1 << i;
        }
    }
    let raid_code: u8 = raid_s
        .trim_start_matches("raid")
        .parse()
        .map_err(|_| bad("RAID must be 0, 1, 5 or 6"))?;
    let raid = RaidType::from_u8(raid_code).map_err(|_| bad("RAID must be 0, 1, 5 or 6"))?;
    let count = members.count_ones() as u8;
    let width = match parts.next() {
        Some(w) => w.parse().map_err(|_| bad("WIDTH must be a number"))?,
        None => count,
    };
    let strip_kib = match parts.next() {
        Some(k) => k.parse().map_err(|_| bad("STRIP_KIB must be a number"))?,
        None => default_strip_kib,
    };
    if parts.next().is_some() {
        return Err(bad("too many fields"));
    }
    if width > count || usize::from(width) < raid.min_strips() {
        return Err(bad(&format!(
            "raid{raid_code} needs {} to {count} strips per stripe, width is {width}",
            raid.min_strips()
        )));
    }
    if strip_kib == 0 || !strip_kib.is_multiple_of(4) {
        return Err(bad("STRIP_KIB must be a multiple of 4"));
    }
    Ok(StripeGroup {
        members,
        raid_type: raid,
        width,
        strip_blocks: strip_kib / 4,
    })
}

fn group_report(g: &StripeGroup) -> GroupReport {
    GroupReport {
        members: (0..32u8).filter(|i| g.members & (1 << i) != 0).collect(),
        raid: g.raid_type as u8,
        width: g.width,
        strip_kib: g.strip_blocks * 4,
    }
}

#[derive(Serialize)]
struct CreatedMember {
    device: String,
    index: u8,
    uuid: String,
    data_blocks: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn uuid_str(u: &Uuid) -> String {
    uuid::Uuid::from_bytes(u.0).hyphenated().to_string()
}

fn fmt_err(ctx: &str, e: stria_core::error::FormatError) -> Failure {
    Failure::msg(format!("{ctx}: {e}"))
}

/// Writes fresh superblocks (both copies) to every member.
pub fn create(a: &CreateArgs) -> Result<CreateReport, Failure> {
    let n = a.devices.len();
    if !(superblock::MIN_MEMBERS..=MAX_MEMBERS).contains(&n) {
        return Err(Failure::msg(format!(
            "create: {n} members given, {} to {MAX_MEMBERS} allowed",
            superblock::MIN_MEMBERS
        )));
    }
    let raid_code = a.raid.unwrap_or(if n >= 3 { 5 } else { 1 });
    let raid = RaidType::from_u8(raid_code)
        .map_err(|_| Failure::msg(format!("create: --raid {raid_code} is not 0, 1, 5 or 6")))?;
    if a.strip_kib == 0 || !a.strip_kib.is_multiple_of(4) {
        return Err(Failure::msg("create: --strip must be a multiple of 4 KiB"));
    }
    let width = a.width.unwrap_or(n as u8);
    if a.groups.is_empty() && (usize::from(width) > n || usize::from(width) < raid.min_strips()) {
        return Err(Failure::msg(format!(
            "create: raid{raid_code} needs {} to {n} strips per stripe, --width is {width}",
            raid.min_strips()
        )));
    }
    let members = a
        .devices
        .iter()
        .map(|d| Member::open(d, true))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, m) in members.iter().enumerate() {
        if members[..i].iter().any(|o| o.path == m.path) {
            return Err(Failure::msg(format!("create: {} is listed twice", m.path)));
        }
        let found = m.signatures()?;
        if !found.is_empty() && !a.force {
            return Err(Failure::msg(format!(
                "{}: found {}; use --force to overwrite it",
                m.path,
                found.join(", ")
            )));
        }
    }

    let mut sb = Superblock::EMPTY;
    sb.incompat = superblock::feature::INCOMPAT_LOG_STRIPES;
    sb.generation = 1;
    sb.ctime = now();
    sb.mtime = sb.ctime;
    sb.array_uuid = Uuid(*uuid::Uuid::new_v4().as_bytes());
    superblock::set_name(&mut sb.array_name, &a.name).map_err(|e| fmt_err("create: --name", e))?;
    sb.member_count = n as u8;
    sb.next_volume_id = 1;
    for (slot, m) in sb.members.iter_mut().zip(&members) {
        *slot = MemberEntry {
            uuid: Uuid(*uuid::Uuid::new_v4().as_bytes()),
            size_blocks: m.blocks(),
            state: MemberState::Active,
        };
    }
    if a.groups.is_empty() {
        sb.group_count = 1;
        sb.groups[0] = StripeGroup {
            members: if n == 32 { u32::MAX } else { (1u32 << n) - 1 },
            raid_type: raid,
            width,
            strip_blocks: a.strip_kib / 4,
        };
    } else {
        if a.groups.len() > sb.groups.len() {
            return Err(Failure::msg(format!(
                "create: at most {} groups",
                sb.groups.len()
            )));
        }
        for (slot, spec) in sb.groups.iter_mut().zip(&a.groups) {
            *slot = parse_group(spec, n, a.strip_kib)?;
        }
        sb.group_count = a.groups.len() as u8;
    }

    // The first volume: thin, as large as group 0 holds when full.
    let data_blocks: Vec<u64> = members
        .iter()
        .map(|m| {
            superblock::locations(m.blocks())
                .map(|l| l.data_end - l.data_start)
                .unwrap_or(0)
        })
        .collect();
    let size_blocks = group_capacity(&sb.groups[0], &data_blocks);
    if size_blocks == 0 {
        return Err(Failure::msg(
            "create: the members are too small for one stripe",
        ));
    }
    let mut vname = [0u8; superblock::VOLUME_NAME_LEN];
    superblock::set_name(&mut vname, "vol0").map_err(|e| fmt_err("create", e))?;
    sb.volumes[0] = Some(VolumeEntry::thin(1, size_blocks, vname, sb.ctime));
    sb.next_volume_id = 2;

    let mut report = CreateReport {
        array_uuid: uuid_str(&sb.array_uuid),
        name: a.name.clone(),
        raid: raid_code,
        width,
        strip_kib: a.strip_kib,
        groups: sb.groups().iter().map(group_report).collect(),
        members: Vec::new(),
    };
    // Encode every member's copy before writing any, so that a refused
    // layout leaves the devices untouched.
    let mut images = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let loc = superblock::locations(m.blocks()).map_err(|e| fmt_err(&m.path, e))?;
        sb.member_index = i as u8;
        sb.data_start = loc.data_start;
        sb.data_end = loc.data_end;
        let mut buf = vec![0u8; SB_BYTES];
        sb.encode(&mut buf)
            .map_err(|e| fmt_err(&format!("create {}", m.path), e))?;
        images.push((loc, buf));
        report.members.push(CreatedMember {
            device: m.path.clone(),
            index: i as u8,
            uuid: uuid_str(&sb.members[i].uuid),
            data_blocks: loc.data_end - loc.data_start,
        });
    }
    // Every member is wiped before any gets a superblock, so a failed
    // wipe leaves no half-made array behind.  Our own copies need no
    // wiping: both are overwritten below.
    if a.force {
        for m in &members {
            m.wipe_signatures()?;
        }
    }
    for (m, (loc, buf)) in members.iter().zip(&images) {
        m.write_block(loc.primary_block, buf)?;
        m.write_block(loc.backup_block, buf)?;
        m.sync()?;
    }
    Ok(report)
}

/// Prints a create report the way a person reads it.
pub fn print_create(r: &CreateReport) {
    println!("created array {} ({})", r.array_uuid, r.name);
    for (i, g) in r.groups.iter().enumerate() {
        println!(
            "  group {i}: raid{}, {} strips of {} KiB per stripe, members {:?}",
            g.raid, g.width, g.strip_kib, g.members
        );
    }
    for m in &r.members {
        println!(
            "  member {:2}: {} {} ({} data blocks)",
            m.index, m.device, m.uuid, m.data_blocks
        );
    }
}

/// One member's superblock as `examine` shows it.
#[derive(Serialize)]
pub struct ExamineReport {
    device: String,
    copy_used: &'static str,
    primary: String,
    backup: String,
    array_uuid: String,
    name: String,
    generation: u64,
    ctime: u64,
    member_index: u8,
    member_count: u8,
    member_uuid: String,
    data_start: u64,
    data_end: u64,
    compat: u64,
    ro_compat: u64,
    incompat: u64,
    needs_read_only: bool,
    log_seq: u64,
    groups: Vec<GroupReport>,
    members: Vec<MemberReport>,
    volumes: Vec<VolumeReport>,
}

#[derive(Serialize)]
struct GroupReport {
    members: Vec<u8>,
    raid: u8,
    width: u8,
    strip_kib: u32,
}

#[derive(Serialize)]
struct MemberReport {
    index: u8,
    uuid: String,
    size_blocks: u64,
    state: String,
}

#[derive(Serialize)]
struct VolumeReport {
    id: u32,
    name: String,
    size_blocks: u64,
    layout: String,
    parent_id: u32,
}

/// Reads and decodes both superblock copies of `dev`.
pub fn examine(dev: &str) -> Result<ExamineReport, Failure> {
    let (primary, backup) = Member::open(dev, false)?.superblocks()?;
    let status = |r: &Result<Superblock, _>| match r {
        Ok(sb) => format!("valid, generation {}", sb.generation),
        Err(e) => format!("invalid: {e}"),
    };
    let (primary_s, backup_s) = (status(&primary), status(&backup));
    let (which, sb) = superblock::pick_newest(
        primary.as_ref().map_err(|e| *e),
        backup.as_ref().map_err(|e| *e),
    )
    .map_err(|e| Failure::msg(format!("{dev}: no valid stria superblock ({e})")))?;
    Ok(ExamineReport {
        device: dev.to_string(),
        copy_used: match which {
            superblock::SbCopy::Primary => "primary",
            superblock::SbCopy::Backup => "backup",
        },
        primary: primary_s,
        backup: backup_s,
        array_uuid: uuid_str(&sb.array_uuid),
        name: superblock::name_str(&sb.array_name).to_string(),
        generation: sb.generation,
        ctime: sb.ctime,
        member_index: sb.member_index,
        member_count: sb.member_count,
        member_uuid: uuid_str(&sb.this_member().uuid),
        data_start: sb.data_start,
        data_end: sb.data_end,
        compat: sb.compat,
        ro_compat: sb.ro_compat,
        incompat: sb.incompat,
        needs_read_only: sb.needs_read_only(),
        log_seq: sb.log_seq,
        groups: sb.groups().iter().map(group_report).collect(),
        members: sb
            .members()
            .iter()
            .enumerate()
            .map(|(i, e)| MemberReport {
                index: i as u8,
                uuid: uuid_str(&e.uuid),
                size_blocks: e.size_blocks,
                state: format!("{:?}", e.state).to_lowercase(),
            })
            .collect(),
        volumes: sb
            .volumes
            .iter()
            .flatten()
            .map(|v| VolumeReport {
                id: v.id,
                name: superblock::name_str(&v.name).to_string(),
                size_blocks: v.size_blocks,
                layout: format!("{:?}", v.layout),
                parent_id: v.parent_id,
            })
            .collect(),
    })
}

/// Prints an examine report the way a person reads it.
pub fn print_examine(r: &ExamineReport) {
    println!("{}:", r.device);
    println!("       array: {} ({})", r.array_uuid, r.name);
    println!(
        "      member: {} of {}, {}",
        r.member_index, r.member_count, r.member_uuid
    );
    println!(
        "  generation: {} (from the {} copy)",
        r.generation, r.copy_used
    );
    println!("     primary: {}", r.primary);
    println!("      backup: {}", r.backup);
    println!("   data area: blocks {}..{}", r.data_start, r.data_end);
    println!(
        "    features: compat {:#x} ro_compat {:#x} incompat {:#x}{}",
        r.compat,
        r.ro_compat,
        r.incompat,
        if r.needs_read_only {
            " (read-only: unknown ro_compat bits)"
        } else {
            ""
        }
    );
    for (i, g) in r.groups.iter().enumerate() {
        println!(
            "     group {i}: raid{} width {} strip {} KiB, members {:?}",
            g.raid, g.width, g.strip_kib, g.members
        );
    }
    for m in &r.members {
        println!(
            "   member {:2}: {} {} blocks {}",
            m.index, m.uuid, m.size_blocks, m.state
        );
    }
    for v in &r.volumes {
        println!(
            "   volume {}: {} {} blocks {}",
            v.id, v.name, v.size_blocks, v.layout
        );
    }
}

/// One stripe header found by `dump`.
#[derive(Serialize)]
pub struct HeaderReport {
    block: u64,
    seq: u64,
    /// Stripes at or below this sequence number were flushed when this
    /// one was built; 0 for none.
    durable_seq: u64,
    timestamp: u64,
    raid: u8,
    strip_kib: u32,
    parity_index: Option<u8>,
    q_index: Option<u8>,
    prev: Option<(u8, u64)>,
    strips: Vec<(u8, u64, u32, u16)>,
    pieces: Vec<PieceReport>,
}

#[derive(Serialize)]
struct PieceReport {
    strip: usize,
    volume: u32,
    /// Other volumes it stands for (instant copies sharing the blocks).
    also: Vec<u32>,
    host_lba: u64,
    host_len: u16,
    start: u16,
    len: u16,
}

/// What `dump` found.
#[derive(Serialize)]
pub struct DumpReport {
    device: String,
    scanned_blocks: u64,
    headers: Vec<HeaderReport>,
    invalid: Vec<(u64, String)>,
}

/// Scans `dev` for stripe headers and decodes each.
pub fn dump(dev: &str, limit: usize) -> Result<DumpReport, Failure> {
    let m = Member::open(dev, false)?;
    let (start, end) = match superblock::locations(m.blocks()) {
        Ok(l)
            if Superblock::decode(&m.read_block(superblock::SB_PRIMARY_BLOCK, SB_BYTES)?)
                .is_ok() =>
        {
            (l.data_start, l.data_end)
        }
        _ => (0, m.blocks()),
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(end - start);
        b.set_style(
            ProgressStyle::with_template("scanning {bar:40} {pos}/{len} blocks {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut report = DumpReport {
        device: dev.to_string(),
        scanned_blocks: end - start,
        headers: Vec::new(),
        invalid: Vec::new(),
    };
    const CHUNK: u64 = 256;
    let mut block = start;
    while block < end && report.headers.len() < limit {
        let n = CHUNK.min(end - block);
        let buf = m.read_block(block, (n * 4096) as usize)?;
        m.drop_cache(block, buf.len());
        for (i, b) in buf.chunks_exact(HEADER_BYTES).enumerate() {
            if !looks_like_header(b) {
                continue;
            }
            let at = block + i as u64;
            match StripeHeader::decode(b) {
                Ok(h) => report.headers.push(header_report(at, &h)),
                Err(e) => report.invalid.push((at, e.to_string())),
            }
        }
        block += n;
        bar.inc(n);
    }
    bar.finish_and_clear();
    Ok(report)
}

fn header_report(block: u64, h: &StripeHeader) -> HeaderReport {
    HeaderReport {
        block,
        seq: h.seq,
        durable_seq: h.durable_seq,
        timestamp: h.timestamp,
        raid: h.raid_type as u8,
        strip_kib: h.strip_blocks * 4,
        parity_index: h.parity_index,
        q_index: h.q_index,
        prev: h.prev.map(|p| (p.member, p.lba)),
        strips: h
            .strips()
            .iter()
            .map(|s| (s.member, s.lba, s.active_count, s.nr_pieces))
            .collect(),
        pieces: h
            .pieces_with_strip()
            .map(|(strip, p)| PieceReport {
                strip,
                volume: p.volume,
                also: h.volumes_of(p).skip(1).collect(),
                host_lba: p.host_lba,
                host_len: p.host_len,
                start: p.start,
                len: p.len,
            })
            .collect(),
    }
}

/// Prints a dump the way a person reads it.
pub fn print_dump(r: &DumpReport) {
    println!(
        "{}: {} blocks scanned, {} stripe headers",
        r.device,
        r.scanned_blocks,
        r.headers.len()
    );
    for h in &r.headers {
        println!(
            "block {}: seq {} (durable {}) raid{} {} strips of {} KiB, parity {:?}/{:?}, prev {:?}",
            h.block,
            h.seq,
            h.durable_seq,
            h.raid,
            h.strips.len(),
            h.strip_kib,
            h.parity_index,
            h.q_index,
            h.prev
        );
        for p in &h.pieces {
            let also = if p.also.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = p.also.iter().map(u32::to_string).collect();
                format!(" (also {})", ids.join(","))
            };
            println!(
                "  strip {}: volume {}{} host {}+{} at {}+{}",
                p.strip, p.volume, also, p.host_lba, p.host_len, p.start, p.len
            );
        }
    }
    for (b, e) in &r.invalid {
        println!("block {b}: damaged header: {e}");
    }
}

/// Host blocks group `g` holds when every member's data area (`data_blocks`,
/// by member index) is filled with full stripes, less a twentieth kept for
/// stripes that flushes close part full.
pub fn group_capacity(g: &StripeGroup, data_blocks: &[u64]) -> u64 {
    let span = u64::from(g.strip_blocks) + 1;
    let width = u64::from(g.width);
    if width == 0 || g.strip_blocks == 0 {
        return 0;
    }
    let strips: u64 = data_blocks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 32 && g.members & (1 << i) != 0)
        .map(|(_, b)| b / span)
        .sum();
    let data_strips = match g.raid_type {
        RaidType::Raid1 => 1,
        r => width.saturating_sub(r.parity_strips() as u64),
    };
    let full = strips / width * data_strips * u64::from(g.strip_blocks);
    full - full / 20
}
