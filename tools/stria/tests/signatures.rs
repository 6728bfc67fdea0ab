// SPDX-License-Identifier: GPL-2.0

//! `stria create` over images that the real tools formatted: refused
//! without `--force`, naming what is there, and with it left the way
//! `wipefs -a` leaves a device, as util-linux's own blkid and wipefs see it.
//!
//! The tools come from tools/testing/stria/provision; a missing one fails
//! the test rather than skipping it.

mod common;

use common::stria;
use common::Images;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::process::Output;

const MIB: u64 = 1 << 20;

/// Where `name` is installed: on `$PATH`, or in the sbin directories a
/// user's `$PATH` may lack.
fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run tools/testing/stria/provision to install it")
        })
}

/// Runs `name` with `args` and `stdin`, for its output whatever its status.
fn output(name: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(program(name))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `name`, which must succeed.
fn run(name: &str, args: &[&str], stdin: &str) {
    let out = output(name, args, stdin);
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `TYPE` and `PTTYPE` values `blkid -p` finds on `path`.
fn blkid_types(path: &str) -> Vec<String> {
    let out = output("blkid", &["-p", "-o", "export", path], "");
    match out.status.code() {
        // Nothing recognised.
        Some(2) => return Vec::new(),
        Some(0) => {}
        _ => panic!(
            "blkid -p {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("TYPE=").or(l.strip_prefix("PTTYPE=")))
        .map(str::to_string)
        .collect()
}

/// Every signature `wipefs` lists on `path`, backup copies included.
fn wipefs_types(path: &str) -> Vec<String> {
    let out = output("wipefs", &["--noheadings", "--output", "TYPE", path], "");
    assert!(out.status.success(), "wipefs {path} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

fn read(path: &str, offset: u64, len: usize) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

/// One kind of device to refuse.
struct Case {
    /// Keeps the images of concurrent tests apart.
    tag: &'static str,
    /// Image size; some tools want room.
    bytes: u64,
    /// Puts the signature on the image at the path.
    prepare: fn(&str),
    /// What `blkid -p` must find before, so a tool that wrote nothing
    /// cannot pass.
    blkid: &'static str,
    /// What the refusal names, in order.
    found: &'static str,
}

/// Prepares the second of two members, then: `create` is refused with one
/// line naming what is there and writes nothing to either member; with
/// `--force` it succeeds and leaves nothing blkid or wipefs recognise.
fn refused_then_wiped(case: &Case) -> Images {
    let img = Images::new(case.tag, 2, case.bytes);
    let target = img.paths[1].as_str();
    (case.prepare)(target);
    let before = blkid_types(target);
    assert!(
        before.iter().any(|t| t == case.blkid),
        "{}: blkid -p finds {before:?}, not {}",
        case.tag,
        case.blkid
    );

    let mut args = vec!["create"];
    args.extend(img.args());
    let out = stria(&args);
    assert!(!out.status.success(), "{}: create succeeded", case.tag);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        format!(
            "stria: {target}: found {}; use --force to overwrite it\n",
            case.found
        )
    );
    for p in &img.paths {
        assert!(
            !stria(&["examine", p]).status.success(),
            "{}: a refused create wrote to {p}",
            case.tag
        );
    }

    args.push("--force");
    let out = stria(&args);
    assert!(
        out.status.success(),
        "{}: create --force failed: {}",
        case.tag,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(blkid_types(target), Vec::<String>::new(), "{}", case.tag);
    assert_eq!(wipefs_types(target), Vec::<String>::new(), "{}", case.tag);
    assert!(stria(&["examine", target]).status.success());
    img
}

fn sfdisk(path: &str, script: &str) {
    run("sfdisk", &["--quiet", path], script);
}

#[test]
fn ext4_is_refused_then_wiped_and_the_member_then_refused_as_stria() {
    let img = refused_then_wiped(&Case {
        tag: "sig-ext4",
        bytes: 64 * MIB,
        prepare: |p| run("mkfs.ext4", &["-q", "-F", p], ""),
        blkid: "ext4",
        found: "ext4",
    });
    // Both members now hold stria superblocks, which a second create
    // names (and libblkid does not).
    let mut args = vec!["create"];
    args.extend(img.args());
    let err = String::from_utf8_lossy(&stria(&args).stderr).into_owned();
    assert_eq!(
        err,
        format!(
            "stria: {}: found stria member; use --force to overwrite it\n",
            img.paths[0]
        )
    );
}

#[test]
fn xfs_is_refused_then_wiped() {
    refused_then_wiped(&Case {
        tag: "sig-xfs",
        // mkfs.xfs wants 300 MB at least.
        bytes: 320 * MIB,
        prepare: |p| run("mkfs.xfs", &["-q", "-f", p], ""),
        blkid: "xfs",
        found: "xfs",
    });
}

#[test]
fn btrfs_is_refused_then_wiped() {
    refused_then_wiped(&Case {
        tag: "sig-btrfs",
        bytes: 128 * MIB,
        prepare: |p| run("mkfs.btrfs", &["-q", "-f", p], ""),
        blkid: "btrfs",
        found: "btrfs",
    });
}

#[test]
fn vfat_is_refused_then_wiped() {
    refused_then_wiped(&Case {
        tag: "sig-vfat",
        bytes: 64 * MIB,
        prepare: |p| run("mkfs.vfat", &[p], ""),
        blkid: "vfat",
        found: "vfat",
    });
}

#[test]
fn swap_is_refused_then_wiped() {
    refused_then_wiped(&Case {
        tag: "sig-swap",
        bytes: 64 * MIB,
        prepare: |p| run("mkswap", &[p], ""),
        blkid: "swap",
        found: "swap",
    });
}

#[test]
fn luks_is_refused_then_wiped() {
    refused_then_wiped(&Case {
        tag: "sig-luks",
        bytes: 64 * MIB,
        prepare: |p| {
            let key = format!("{p}.key");
            std::fs::write(&key, b"not a secret, only a test").unwrap();
            run(
                "cryptsetup",
                &[
                    "luksFormat",
                    "--batch-mode",
                    "--key-file",
                    &key,
                    "--pbkdf",
                    "pbkdf2",
                    "--pbkdf-force-iterations",
                    "1000",
                    p,
                ],
                "",
            );
        },
        blkid: "crypto_LUKS",
        found: "crypto_LUKS",
    });
}

#[test]
fn bcache_is_refused_then_wiped() {
    // Its superblock sits at 4 KiB, under stria's primary copy: this case
    // is about the refusal, the wipe is checked by the others.
    refused_then_wiped(&Case {
        tag: "sig-bcache",
        bytes: 64 * MIB,
        prepare: |p| run("make-bcache", &["-B", p], ""),
        blkid: "bcache",
        found: "bcache",
    });
}

#[test]
fn gpt_is_refused_then_wiped_backup_header_included() {
    // Not a whole number of 4 KiB blocks: the last sector, where the backup
    // header lies, is beyond what stria writes, so only the wipe clears it.
    let bytes = 64 * MIB + 2048;
    let img = refused_then_wiped(&Case {
        tag: "sig-gpt",
        bytes,
        prepare: |p| sfdisk(p, "label: gpt\n,16M\n,\n"),
        blkid: "gpt",
        found: "gpt partition table",
    });
    let target = &img.paths[1];
    assert_ne!(read(target, 512, 8), b"EFI PART", "primary GPT header left");
    assert_ne!(
        read(target, bytes - 512, 8),
        b"EFI PART",
        "backup GPT header left"
    );
    assert_eq!(read(target, 510, 2), [0, 0], "protective MBR left");
}

#[test]
fn mbr_and_the_filesystem_under_it_are_refused_then_wiped() {
    refused_then_wiped(&Case {
        tag: "sig-mbr",
        bytes: 64 * MIB,
        prepare: |p| {
            run("mkfs.ext4", &["-q", "-F", p], "");
            sfdisk(p, "label: dos\n,16M,83\n");
        },
        blkid: "dos",
        found: "ext4, dos partition table",
    });
}
