// SPDX-License-Identifier: GPL-2.0

//! `stria copy`: instant copies of volumes.
//!
//! A copy is a volume of its own that starts out as its source was at the
//! moment of the call; the kernel makes it in a time that does not depend
//! on how much the source holds.

use crate::control::Control;
use crate::error::Failure;
use crate::uapi;
use crate::volume;
use crate::volume::VolumeArg;
use crate::volume::VolumeReport;
use nix::errno::Errno;
use serde::Serialize;

/// The name of copy metadata form `f` (`STRIA_COPY_FORM_*`).
pub fn form_name(f: u32) -> &'static str {
    match f {
        uapi::COPY_FORM_FULL => "full-pointer-table",
        uapi::COPY_FORM_CHANGED => "changed-blocks",
        _ => "unknown",
    }
}

/// The name of divergence map form `t` (`STRIA_TRACK_*`).
pub fn track_name(t: u32) -> &'static str {
    match t {
        uapi::TRACK_NONE => "none",
        uapi::TRACK_BITMAP => "full-bitmap",
        uapi::TRACK_MULTI => "multi-level-bitmaps",
        uapi::TRACK_PARTIAL => "partial-area-bitmaps",
        _ => "unknown",
    }
}

/// `--track` of `copy create`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TrackArg {
    /// Let the driver pick by the volume's size and how much of the
    /// source is written.
    Auto,
    /// No divergence map: diffs compare the maps.
    None,
    /// A full bit map, a bit per block of the volume.
    Bitmap,
    /// Multi-level bit maps: per GiB, then per 2 MiB marked.
    Multi,
    /// Partial-area bit maps: extent definitions for the 2 MiB areas
    /// marked, multi-level once there are many.
    Partial,
}

impl TrackArg {
    fn code(self) -> u32 {
        match self {
            TrackArg::Auto => uapi::TRACK_AUTO,
            TrackArg::None => uapi::TRACK_NONE,
            TrackArg::Bitmap => uapi::TRACK_BITMAP,
            TrackArg::Multi => uapi::TRACK_MULTI,
            TrackArg::Partial => uapi::TRACK_PARTIAL,
        }
    }
}

/// `--form` of `copy create`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormArg {
    /// Let the driver pick by the size of the source's map.
    Auto,
    /// A full pointer table: a map page is copied whole on the first
    /// write into it.
    Full,
    /// Pointers for changed blocks only, over the shared page.
    Changed,
}

impl FormArg {
    fn code(self) -> u32 {
        match self {
            FormArg::Auto => uapi::COPY_FORM_AUTO,
            FormArg::Full => uapi::COPY_FORM_FULL,
            FormArg::Changed => uapi::COPY_FORM_CHANGED,
        }
    }
}

/// One copy as `copy list` and `copy show` report it.
#[derive(Serialize)]
pub struct CopyReport {
    /// The copy, as a volume.
    #[serde(flatten)]
    pub volume: VolumeReport,
    /// The name of the volume it is a copy of, if that still exists.
    pub source: Option<String>,
    /// Its copy metadata form.
    pub form: &'static str,
    /// The form its divergence map has now.
    pub divergence: &'static str,
    /// Bytes of memory its divergence map takes.
    pub divergence_bytes: u64,
    /// Blocks its divergence map marks as changed on either side.
    pub divergence_blocks: u64,
}

/// The volumes of array `index`, with their shared blocks counted if
/// `sharing`; ENOENT if it is not running.
pub fn volumes_of(
    ctl: &Control,
    index: u32,
    sharing: bool,
    what: &str,
) -> Result<Vec<VolumeReport>, Failure> {
    let vs = if sharing {
        ctl.volumes(index)?
    } else {
        ctl.volume_ids(index)?
    };
    let vs = vs.ok_or_else(|| Failure::errno(what, Errno::ENOENT))?;
    Ok(volume::reports(&vs))
}

/// The volume `v` names among `all`.
pub fn find<'a>(all: &'a [VolumeReport], v: &VolumeArg) -> Option<&'a VolumeReport> {
    all.iter().find(|r| match v {
        VolumeArg::Named { name, .. } => r.name == *name,
        VolumeArg::Device { disk, .. } => r.device.as_deref() == Some(&format!("/dev/{disk}")),
    })
}

/// The array `v` is in.
pub fn index_of(v: &VolumeArg) -> u32 {
    match v {
        VolumeArg::Named { index, .. } | VolumeArg::Device { index, .. } => *index,
    }
}

fn report(all: &[VolumeReport], v: VolumeReport) -> CopyReport {
    let source = v
        .copy_of
        .and_then(|id| all.iter().find(|s| s.id == id))
        .map(|s| s.name.clone());
    CopyReport {
        form: form_name(v.copy_form),
        divergence: track_name(v.track),
        divergence_bytes: v.track_bytes,
        divergence_blocks: v.track_blocks,
        volume: v,
        source,
    }
}

/// What `copy create` made.
#[derive(Serialize)]
pub struct CreateReport {
    /// The array's number.
    pub array: u32,
    /// The copy's volume id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its block device.
    pub device: String,
    /// The id of the volume copied.
    pub source_id: u32,
    /// The copy metadata form the driver recorded.
    pub form: &'static str,
    /// The form of divergence map it got.
    pub divergence: &'static str,
    /// How long the kernel took, in microseconds.
    pub micros: u128,
}

/// `stria copy create SOURCE NAME [--form F] [--track T]`.
pub fn create(
    source: &str,
    name: &str,
    form: FormArg,
    track: TrackArg,
) -> Result<CreateReport, Failure> {
    let v = volume::parse_volume(source)?;
    let name_bytes = volume::volume_name(name)?;
    let index = index_of(&v);
    let ctl = Control::open()?;
    let what = format!("copy create {source} {name}");
    let all = volumes_of(&ctl, index, false, &what)?;
    let src = find(&all, &v).ok_or_else(|| Failure::errno(&what, Errno::ENOENT))?;
    let t0 = std::time::Instant::now();
    let out = ctl.volume(
        &uapi::Volume {
            index,
            op: uapi::VOLUME_COPY,
            id: src.id,
            form: form.code(),
            track: track.code(),
            size_sectors: 0,
            name: name_bytes,
            ..Default::default()
        },
        &what,
    )?;
    let micros = t0.elapsed().as_micros();
    let made = volumes_of(&ctl, index, false, &what)?;
    let made = made.iter().find(|r| r.id == out.id);
    let recorded = made.map_or(0, |r| r.copy_form);
    let tracked = made.map_or(0, |r| r.track);
    Ok(CreateReport {
        array: index,
        id: out.id,
        name: name.to_string(),
        device: volume::device_path(index, out.id),
        source_id: src.id,
        form: form_name(recorded),
        divergence: track_name(tracked),
        micros,
    })
}

/// `stria copy list [ARRAY]`: every copy of one array or of all.
pub fn list(array: Option<&str>) -> Result<Vec<CopyReport>, Failure> {
    let all = volume::list(array)?.unwrap_or_default();
    let mut out = Vec::new();
    for v in all.iter().filter(|v| v.copy_of.is_some()) {
        let same: Vec<VolumeReport> = all.iter().filter(|a| a.array == v.array).cloned().collect();
        out.push(report(&same, v.clone()));
    }
    Ok(out)
}

/// The copy COPY names, with every volume of its array (shared blocks
/// counted if `sharing`); `verb` and `hint` go into the errors.
fn lookup(
    ctl: &Control,
    copy: &str,
    sharing: bool,
    verb: &str,
    hint: &str,
) -> Result<(VolumeArg, Vec<VolumeReport>, VolumeReport), Failure> {
    let v = volume::parse_volume(copy)?;
    let what = format!("copy {verb} {copy}");
    let all = volumes_of(ctl, index_of(&v), sharing, &what)?;
    let found = find(&all, &v)
        .cloned()
        .ok_or_else(|| Failure::errno(&what, Errno::ENOENT))?;
    if found.copy_of.is_none() {
        return Err(Failure::errno(
            format!("{what}: not an instant copy{hint}"),
            Errno::EINVAL,
        ));
    }
    Ok((v, all, found))
}

/// `stria copy show COPY`.
pub fn show(copy: &str) -> Result<CopyReport, Failure> {
    let ctl = Control::open()?;
    let (_, all, found) = lookup(&ctl, copy, true, "show", "")?;
    Ok(report(&all, found))
}

/// `stria copy delete COPY`: deletes a copy like any volume; what it
/// shares with others stays theirs.
pub fn delete(copy: &str) -> Result<(), Failure> {
    let ctl = Control::open()?;
    let (v, _, _) = lookup(&ctl, copy, false, "delete", " (use volume delete)")?;
    let what = format!("copy delete {copy}");
    let req = uapi::Volume {
        op: uapi::VOLUME_DELETE,
        ..volume::target(&ctl, &v, &what)?
    };
    ctl.volume(&req, &what)?;
    Ok(())
}

/// Prints copies as a table.
pub fn print(r: &[CopyReport]) {
    println!(
        "{:<16} {:>3} {:<16} {:<16} {:>10} {:>10} {:>10} {:>7}  {:<18} {:<20} {:>9}",
        "DEVICE",
        "ID",
        "NAME",
        "SOURCE",
        "MAPPED",
        "SHARED",
        "MAP",
        "DELTAS",
        "FORM",
        "DIVERGENCE",
        "DIV-MAP"
    );
    for c in r {
        let v = &c.volume;
        println!(
            "{:<16} {:>3} {:<16} {:<16} {:>10} {:>10} {:>10} {:>7}  {:<18} {:<20} {:>9}",
            v.device.as_deref().unwrap_or("-"),
            v.id,
            v.name,
            c.source.as_deref().unwrap_or("(deleted)"),
            v.mapped_blocks,
            v.shared_blocks,
            crate::human(v.map_bytes),
            v.deltas,
            c.form,
            c.divergence,
            crate::human(c.divergence_bytes)
        );
    }
}
