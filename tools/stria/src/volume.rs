// SPDX-License-Identifier: GPL-2.0

//! `stria volume`: create, resize, delete and list the volumes of an array.
//!
//! The helper checks only what it must to build a request (a name that fits
//! the ABI's charset and length, a size in whole 4 KiB blocks); the kernel
//! decides everything else and its errno is reported as is.

use crate::control::Control;
use crate::error::Failure;
use crate::uapi;
use nix::errno::Errno;
use serde::Serialize;

/// Volumes are made of 4 KiB blocks.
pub const BLOCK_BYTES: u64 = 4096;

/// Longest volume name (the ABI's field keeps a NUL after it).
pub const NAME_LEN_MAX: usize = uapi::VOLUME_NAME_MAX - 1;

/// The bytes of SIZE: plain bytes, or a whole number with a binary unit
/// K, M, G, T or P (also KiB, MiB, ...; any case), which must come to a
/// whole number of 4 KiB blocks.
pub fn parse_size(s: &str) -> Result<u64, Failure> {
    let bad = |why: &str| Failure::errno(format!("--size {s}: {why}"), Errno::EINVAL);
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(bad("expected bytes or a number with K, M, G, T or P"));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        "p" | "pib" => 50,
        _ => {
            return Err(bad(
                "unknown unit (K, M, G, T or P, powers of 1024, or plain bytes)",
            ))
        }
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| bad("too large"))?;
    if !bytes.is_multiple_of(BLOCK_BYTES) {
        return Err(bad("not a multiple of 4 KiB"));
    }
    Ok(bytes)
}

/// `name` NUL padded as the ABI carries it, if it is 1 to 31 characters
/// out of `A-Z a-z 0-9 . _ -`.
pub fn volume_name(name: &str) -> Result<[u8; uapi::VOLUME_NAME_MAX], Failure> {
    let ok = (1..=NAME_LEN_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(Failure::errno(
            format!("volume name '{name}': expected 1 to {NAME_LEN_MAX} characters out of A-Z a-z 0-9 . _ -"),
            Errno::EINVAL,
        ));
    }
    let mut out = [0u8; uapi::VOLUME_NAME_MAX];
    out[..name.len()].copy_from_slice(name.as_bytes());
    Ok(out)
}

/// A NUL-padded name from the kernel as text.
pub(crate) fn name_text(b: &[u8]) -> String {
    let len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..len]).into_owned()
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `/dev/striaN`, `striaN`, `/dev/striaNvM` or `striaNvM` as the array's
/// number and the volume's block device name (without `/dev/`).
fn parse_disk(s: &str) -> Option<(u32, String)> {
    let rest = s.strip_prefix("/dev/").unwrap_or(s).strip_prefix("stria")?;
    let (n, v) = match rest.split_once('v') {
        Some((n, m)) => (number(n)?, Some(number(m)?)),
        None => (number(rest)?, None),
    };
    if n >= uapi::MAX_ARRAYS {
        return None;
    }
    let disk = match v {
        Some(m) => format!("stria{n}v{m}"),
        None => format!("stria{n}"),
    };
    Some((n, disk))
}

/// The block device of volume `id` of array `index`, as the kernel names it.
pub fn device_path(index: u32, id: u32) -> String {
    if id == 1 {
        format!("/dev/stria{index}")
    } else {
        format!("/dev/stria{index}v{id}")
    }
}

/// The array named by ARRAY: its number N or any of its volumes'
/// devices (`/dev/striaN`, `striaN`, `/dev/striaNvM`, `striaNvM`).
pub fn parse_array(s: &str) -> Result<u32, Failure> {
    number(s)
        .filter(|&n| n < uapi::MAX_ARRAYS)
        .or_else(|| parse_disk(s).map(|(n, _)| n))
        .ok_or_else(|| {
            Failure::msg(format!(
                "{s}: not a stria array (expected N, /dev/striaN or /dev/striaNvM)"
            ))
        })
}

/// A volume as named on the command line.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeArg {
    /// By block device: the array's number and the device's name.
    Device { index: u32, disk: String },
    /// `ARRAY/NAME`: the array's number and the volume's name.
    Named { index: u32, name: String },
}

/// Parses VOLUME: `/dev/striaNvM`, `striaNvM`, `/dev/striaN`, `striaN`, or
/// `ARRAY/NAME` with ARRAY as [`parse_array`] takes it.
pub fn parse_volume(s: &str) -> Result<VolumeArg, Failure> {
    if let Some((index, disk)) = parse_disk(s) {
        return Ok(VolumeArg::Device { index, disk });
    }
    let Some((array, name)) = s.rsplit_once('/') else {
        return Err(Failure::msg(format!(
            "{s}: not a stria volume (expected /dev/striaNvM, /dev/striaN or ARRAY/NAME)"
        )));
    };
    let index = parse_array(array)?;
    volume_name(name)?;
    Ok(VolumeArg::Named {
        index,
        name: name.to_string(),
    })
}

/// The request naming `v`: by id once its device is found among the
/// array's volumes, by name otherwise (the kernel looks it up).
pub(crate) fn target(ctl: &Control, v: &VolumeArg, what: &str) -> Result<uapi::Volume, Failure> {
    match v {
        VolumeArg::Named { index, name } => Ok(uapi::Volume {
            index: *index,
            name: volume_name(name)?,
            ..Default::default()
        }),
        VolumeArg::Device { index, disk } => {
            let id = ctl
                .volume_ids(*index)?
                .and_then(|vs| {
                    let n = (vs.nr_volumes as usize).min(vs.volumes.len());
                    vs.volumes[..n]
                        .iter()
                        .find(|i| name_text(&i.disk) == *disk)
                        .map(|i| i.id)
                })
                .ok_or_else(|| Failure::errno(what, Errno::ENOENT))?;
            Ok(uapi::Volume {
                index: *index,
                id,
                ..Default::default()
            })
        }
    }
}

/// What `volume create` made.
#[derive(Serialize)]
pub struct CreateReport {
    /// The array's number.
    pub array: u32,
    /// The new volume's id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its block device.
    pub device: String,
    /// Its size.
    pub size_bytes: u64,
}

/// `stria volume create ARRAY NAME --size SIZE`.
pub fn create(array: &str, name: &str, size: &str) -> Result<CreateReport, Failure> {
    let index = parse_array(array)?;
    let name_bytes = volume_name(name)?;
    let size_bytes = parse_size(size)?;
    let ctl = Control::open()?;
    let out = ctl.volume(
        &uapi::Volume {
            index,
            op: uapi::VOLUME_CREATE,
            id: 0,
            form: 0,
            track: 0,
            size_sectors: size_bytes / 512,
            name: name_bytes,
            ..Default::default()
        },
        &format!("volume create stria{index}/{name}"),
    )?;
    Ok(CreateReport {
        array: index,
        id: out.id,
        name: name.to_string(),
        device: device_path(index, out.id),
        size_bytes,
    })
}

/// `stria volume resize VOLUME --size SIZE`.
pub fn resize(volume: &str, size: &str) -> Result<(), Failure> {
    let v = parse_volume(volume)?;
    let size_bytes = parse_size(size)?;
    let ctl = Control::open()?;
    let what = format!("volume resize {volume}");
    let req = uapi::Volume {
        op: uapi::VOLUME_RESIZE,
        size_sectors: size_bytes / 512,
        ..target(&ctl, &v, &what)?
    };
    ctl.volume(&req, &what)?;
    Ok(())
}

/// `stria volume delete VOLUME`.
pub fn delete(volume: &str) -> Result<(), Failure> {
    let v = parse_volume(volume)?;
    let ctl = Control::open()?;
    let what = format!("volume delete {volume}");
    let req = uapi::Volume {
        op: uapi::VOLUME_DELETE,
        ..target(&ctl, &v, &what)?
    };
    ctl.volume(&req, &what)?;
    Ok(())
}

/// One volume as `volume list` reports it.
#[derive(Clone, Serialize)]
pub struct VolumeReport {
    /// The array's number.
    pub array: u32,
    /// The volume's id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its block device; `None` if the kernel serves none for it.
    pub device: Option<String>,
    /// Its size.
    pub size_bytes: u64,
    /// How many times its block device is open.
    pub open_count: u32,
    /// Blocks its map points somewhere.
    pub mapped_blocks: u64,
    /// Memory its map takes.
    pub map_bytes: u64,
    /// `map_bytes` per mapped block.
    pub map_bytes_per_block: f64,
    /// Id of the volume it is an instant copy of, if it is one.
    pub copy_of: Option<u32>,
    /// Log sequence number of the copy point (0 if no copy).
    pub copy_seq: u64,
    /// Mapped blocks another volume of its copy tree points at too.
    pub shared_blocks: u64,
    /// Mapped blocks no other volume points at (`mapped_blocks` minus
    /// `shared_blocks`): what deleting it gives back.
    pub unique_blocks: u64,
    /// Bytes of the directory pages, leaves and deltas of its map that
    /// other volumes read too (part of `map_bytes`).
    pub shared_map_bytes: u64,
    /// Copy metadata form recorded for a copy (`STRIA_COPY_FORM_*`).
    #[serde(skip)]
    pub copy_form: u32,
    /// Changed-block deltas in its map.
    pub deltas: u32,
    /// Form of its divergence map (`STRIA_TRACK_*`), 0 if not a copy.
    #[serde(skip)]
    pub track: u32,
    /// Bytes its divergence map takes.
    #[serde(skip)]
    pub track_bytes: u64,
    /// Blocks its divergence map marks.
    #[serde(skip)]
    pub track_blocks: u64,
}

pub(crate) fn reports(vs: &uapi::Volumes) -> Vec<VolumeReport> {
    let n = (vs.nr_volumes as usize).min(vs.volumes.len());
    vs.volumes[..n]
        .iter()
        .map(|v| {
            let disk = name_text(&v.disk);
            VolumeReport {
                array: vs.index,
                id: v.id,
                name: name_text(&v.name),
                device: (!disk.is_empty()).then(|| format!("/dev/{disk}")),
                size_bytes: v.size_sectors * 512,
                open_count: v.open_count,
                mapped_blocks: v.map_blocks,
                map_bytes: v.map_bytes,
                map_bytes_per_block: crate::per_block(v.map_bytes, v.map_blocks),
                copy_of: (v.flags & uapi::VINFO_COPY != 0).then_some(v.parent_id),
                copy_seq: v.copy_seq,
                shared_blocks: v.shared_blocks,
                unique_blocks: v.map_blocks.saturating_sub(v.shared_blocks),
                shared_map_bytes: v.shared_map_bytes,
                copy_form: v.copy_form,
                deltas: v.deltas,
                track: v.track,
                track_bytes: v.track_bytes,
                track_blocks: v.track_blocks,
            }
        })
        .collect()
}

/// `stria volume list [ARRAY]`: the volumes of one array, or of every
/// running array; `None` if there is no array at all.
pub fn list(array: Option<&str>) -> Result<Option<Vec<VolumeReport>>, Failure> {
    let index = array.map(parse_array).transpose()?;
    let ctl = Control::open()?;
    let indices: Vec<u32> = match index {
        Some(i) => vec![i],
        None => ctl.all()?.iter().map(|s| s.index).collect(),
    };
    if indices.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for i in indices {
        match ctl.volumes(i)? {
            Some(vs) => out.extend(reports(&vs)),
            // Asked for by the user: say it is not there.
            None if index.is_some() => {
                return Err(Failure::errno(
                    format!("volume list stria{i}"),
                    Errno::ENOENT,
                ))
            }
            // Stopped since it was listed.
            None => {}
        }
    }
    Ok(Some(out))
}

/// Prints `volume list` as a table.
pub fn print_list(r: &[VolumeReport]) {
    let head = [
        "DEVICE", "ARRAY", "ID", "NAME", "SIZE", "OPEN", "MAPPED", "SHARED", "MAP", "B/BLOCK",
    ];
    let rows: Vec<[String; 10]> = r
        .iter()
        .map(|v| {
            [
                v.device.clone().unwrap_or_else(|| "-".to_string()),
                v.array.to_string(),
                v.id.to_string(),
                v.name.clone(),
                crate::human(v.size_bytes),
                v.open_count.to_string(),
                v.mapped_blocks.to_string(),
                v.shared_blocks.to_string(),
                crate::human(v.map_bytes),
                format!("{:.2}", v.map_bytes_per_block),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    // Text columns left, numbers right.
    let left = [
        true, false, false, true, false, false, false, false, false, false,
    ];
    let line = |cells: &[&str]| {
        let s: Vec<String> = cells
            .iter()
            .zip(width.iter().zip(left))
            .map(|(c, (&w, l))| {
                if l {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(&head);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("4096B").unwrap(), 4096);
        assert_eq!(parse_size("4096K").unwrap(), 4096 << 10);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("10gib").unwrap(), 10 << 30);
        assert_eq!(parse_size("3T").unwrap(), 3 << 40);
        assert_eq!(parse_size("2P").unwrap(), 2 << 50);
        assert_eq!(parse_size("0").unwrap(), 0);
    }

    #[test]
    fn sizes_must_be_whole_blocks() {
        for s in ["1000", "4097", "6K", "2K", "1B"] {
            let e = parse_size(s).unwrap_err();
            assert_eq!(e.raw_errno(), Some(Errno::EINVAL), "{s}");
            assert!(
                e.to_string().contains("not a multiple of 4 KiB"),
                "{s}: {e}"
            );
        }
    }

    #[test]
    fn malformed_sizes_are_refused() {
        for s in [
            "",
            "G",
            "-4K",
            "+4K",
            "1.5G",
            "4 K",
            "4KB",
            "4X",
            "4Ki",
            " 4096",
            "99999999999P",
            "18446744073709551616",
        ] {
            let e = parse_size(s).unwrap_err();
            assert_eq!(e.raw_errno(), Some(Errno::EINVAL), "{s:?}");
            assert!(e.to_string().starts_with(&format!("--size {s}: ")), "{e}");
        }
    }

    #[test]
    fn names_are_checked_and_padded() {
        let n = volume_name("vol0").unwrap();
        assert_eq!(&n[..4], b"vol0");
        assert!(n[4..].iter().all(|&b| b == 0));
        let longest = "a".repeat(31);
        assert_eq!(&volume_name(&longest).unwrap()[..31], longest.as_bytes());
        assert_eq!(volume_name(&longest).unwrap()[31], 0);
        for good in ["A", "web-01", "db_2.data", "...", "-x", "0"] {
            assert!(volume_name(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(32);
        for bad in [
            "",
            too_long.as_str(),
            "a b",
            "a/b",
            "é",
            "tab\t",
            "nul\0",
            "x:y",
        ] {
            let e = volume_name(bad).unwrap_err();
            assert_eq!(e.raw_errno(), Some(Errno::EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn arrays_by_number_or_any_volume_device() {
        for (s, n) in [
            ("0", 0),
            ("63", 63),
            ("stria3", 3),
            ("/dev/stria3", 3),
            ("stria3v2", 3),
            ("/dev/stria12v7", 12),
        ] {
            assert_eq!(parse_array(s).unwrap(), n, "{s}");
        }
        for s in [
            "",
            "64",
            "-1",
            "+1",
            "stria",
            "stria64",
            "/dev/stria",
            "/dev/sda",
            "stria1v",
            "stria1vx",
            "stria1v2v3",
            "/dev/stria1/",
            "dev/stria1",
            "stria 1",
        ] {
            assert!(parse_array(s).is_err(), "{s:?}");
        }
    }

    fn device(index: u32, disk: &str) -> VolumeArg {
        VolumeArg::Device {
            index,
            disk: disk.to_string(),
        }
    }

    fn named(index: u32, name: &str) -> VolumeArg {
        VolumeArg::Named {
            index,
            name: name.to_string(),
        }
    }

    #[test]
    fn volumes_by_device_or_array_and_name() {
        for (s, want) in [
            ("/dev/stria0", device(0, "stria0")),
            ("stria0", device(0, "stria0")),
            ("/dev/stria2v5", device(2, "stria2v5")),
            ("stria2v5", device(2, "stria2v5")),
            // Leading zeros name the same device.
            ("stria02v05", device(2, "stria2v5")),
            ("0/vol0", named(0, "vol0")),
            ("stria1/web", named(1, "web")),
            ("/dev/stria1/web", named(1, "web")),
            ("/dev/stria1v3/web", named(1, "web")),
            // A name may look like a device.
            ("4/stria0v2", named(4, "stria0v2")),
        ] {
            assert_eq!(parse_volume(s).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn bad_volume_arguments_are_refused() {
        // Not a volume at all: a plain message.
        for s in ["", "0", "vol0", "/dev/sda", "stria64", "stria0v"] {
            let e = parse_volume(s).unwrap_err();
            assert_eq!(e.raw_errno(), None, "{s:?}");
            assert!(e.to_string().contains("not a stria"), "{s:?}: {e}");
        }
        // No such array syntax before the slash.
        assert!(parse_volume("64/web").is_err());
        assert!(parse_volume("/dev/sda/web").is_err());
        // A name the ABI cannot carry: EINVAL.
        let long = format!("0/{}", "n".repeat(32));
        for s in ["0/", "0/a b", long.as_str(), "0/x:y"] {
            let e = parse_volume(s).unwrap_err();
            assert_eq!(e.raw_errno(), Some(Errno::EINVAL), "{s:?}");
        }
    }

    #[test]
    fn device_paths_follow_the_kernel_naming() {
        assert_eq!(device_path(0, 1), "/dev/stria0");
        assert_eq!(device_path(0, 2), "/dev/stria0v2");
        assert_eq!(device_path(17, 40), "/dev/stria17v40");
    }

    #[test]
    fn reports_take_valid_entries_and_name_devices() {
        let mut vs = uapi::Volumes {
            index: 2,
            nr_volumes: 2,
            ..Default::default()
        };
        vs.volumes[0] = uapi::VolumeInfo {
            id: 1,
            open_count: 1,
            size_sectors: 2048,
            map_blocks: 4,
            map_bytes: 10,
            ..Default::default()
        };
        vs.volumes[0].name[..4].copy_from_slice(b"vol0");
        vs.volumes[0].disk[..6].copy_from_slice(b"stria2");
        vs.volumes[1] = uapi::VolumeInfo {
            id: 3,
            size_sectors: 8,
            ..Default::default()
        };
        vs.volumes[1].name[..3].copy_from_slice(b"web");
        // An entry past nr_volumes is not reported.
        vs.volumes[2].id = 9;
        let r = reports(&vs);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].device.as_deref(), Some("/dev/stria2"));
        assert_eq!(r[0].name, "vol0");
        assert_eq!(r[0].size_bytes, 1 << 20);
        assert_eq!(r[0].map_bytes_per_block, 2.5);
        // No disk name from the kernel: no block device.
        assert_eq!(r[1].device, None);
        assert_eq!(r[1].map_bytes_per_block, 0.0);
        // A count beyond the table is clamped.
        vs.nr_volumes = 1000;
        assert_eq!(reports(&vs).len(), uapi::MAX_VOLUMES);
    }
}
