// SPDX-License-Identifier: GPL-2.0

//! `stria create`, `examine` and `dump` on image files, end to end through
//! the built binary.

mod common;

use common::stria;
use common::Images;
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use stria_core::geometry::RaidType;
use stria_core::header::HeaderBuilder;
use stria_core::header::StripeLocation;
use stria_core::header::StripeParams;
use stria_core::header::HEADER_BYTES;
use stria_core::uuid::Uuid;

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stria failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn patch(path: &str, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(Path::new(path))
        .unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

#[test]
fn create_then_examine_every_member() {
    let img = Images::new("create", 4, 64 << 20);
    let mut args = vec![
        "create", "--raid", "6", "--strip", "64", "--name", "pool0", "--json",
    ];
    args.extend(img.args());
    let created = json(&stria(&args));
    assert_eq!(created["raid"], 6);
    assert_eq!(created["width"], 4);
    let uuid = created["array_uuid"].as_str().unwrap().to_string();
    for (i, p) in img.paths.iter().enumerate() {
        let e = json(&stria(&["examine", "--json", p]));
        assert_eq!(e["array_uuid"], uuid.as_str());
        assert_eq!(e["member_index"], i);
        assert_eq!(e["member_count"], 4);
        assert_eq!(e["name"], "pool0");
        assert_eq!(e["groups"][0]["raid"], 6);
        assert_eq!(e["groups"][0]["strip_kib"], 64);
        assert_eq!(e["copy_used"], "primary");
        assert_eq!(e["member_uuid"], created["members"][i]["uuid"]);
    }
}

#[test]
fn examine_falls_back_to_the_backup_copy() {
    let img = Images::new("backup", 2, 16 << 20);
    let mut args = vec!["create"];
    args.extend(img.args());
    assert!(stria(&args).status.success());
    // Damage the primary copy (block 1).
    patch(&img.paths[0], 4096 + 100, b"garbage");
    let e = json(&stria(&["examine", "--json", &img.paths[0]]));
    assert_eq!(e["copy_used"], "backup");
    assert!(e["primary"].as_str().unwrap().starts_with("invalid"));
    // Damage the backup too: no valid superblock, a one-line error.
    let size = 16u64 << 20;
    patch(&img.paths[0], size - 4096 * 4 + 100, b"garbage");
    let out = stria(&["examine", &img.paths[0]]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no valid stria superblock"));
}

#[test]
fn dump_decodes_headers_and_reports_damaged_ones() {
    let img = Images::new("dump", 1, 8 << 20);
    let params = StripeParams {
        array_uuid: Uuid([9; 16]),
        seq: 4242,
        timestamp: 7,
        prev: None,
        durable_seq: 4200,
        raid_type: RaidType::Raid5,
        group: 0,
        strip_blocks: 8,
        parity_index: Some(2),
        q_index: None,
    };
    let locs: Vec<_> = (0..3)
        .map(|m| StripeLocation {
            member: m,
            lba: 100,
        })
        .collect();
    let mut b = HeaderBuilder::new(&params, &locs).unwrap();
    b.append(3, 500, 6).unwrap();
    let mut buf = vec![0u8; HEADER_BYTES];
    b.encode(&mut buf).unwrap();
    patch(&img.paths[0], 100 * 4096, &buf);
    buf[300] ^= 1;
    patch(&img.paths[0], 900 * 4096, &buf);

    let d = json(&stria(&["dump", "--json", &img.paths[0]]));
    assert_eq!(d["headers"].as_array().unwrap().len(), 1);
    let h = &d["headers"][0];
    assert_eq!(h["block"], 100);
    assert_eq!(h["seq"], 4242);
    assert_eq!(h["durable_seq"], 4200);
    assert_eq!(h["raid"], 5);
    assert_eq!(h["pieces"][0]["volume"], 3);
    assert_eq!(h["pieces"][0]["host_lba"], 500);
    assert_eq!(d["invalid"][0][0], 900);

    // The plain form prints it too.
    let out = stria(&["dump", &img.paths[0]]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("block 100: seq 4242 (durable 4200) raid5"),
        "{text}"
    );
}

#[test]
fn errors_are_one_line_with_the_errno_and_fail() {
    let out = stria(&["examine", "/nonexistent/stria-member"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "stria: /nonexistent/stria-member: No such file or directory (ENOENT)"
    );
    let out = stria(&["create", "/dev/null", "/dev/zero"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(ENOTBLK)"));
}

#[test]
fn create_with_explicit_groups() {
    let img = Images::new("groups", 6, 16 << 20);
    let mut args = vec![
        "create",
        "--json",
        "--group",
        "0-3:raid6",
        "--group",
        "4,5:1:2:16",
    ];
    args.extend(img.args());
    let c = json(&stria(&args));
    assert_eq!(c["groups"].as_array().unwrap().len(), 2);
    let e = json(&stria(&["examine", "--json", &img.paths[5]]));
    assert_eq!(e["groups"][0]["members"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(e["groups"][0]["raid"], 6);
    assert_eq!(e["groups"][0]["width"], 4);
    assert_eq!(e["groups"][1]["members"], serde_json::json!([4, 5]));
    assert_eq!(e["groups"][1]["raid"], 1);
    assert_eq!(e["groups"][1]["strip_kib"], 16);

    for (spec, why) in [
        ("0-6:raid5", "not within 0-5"),
        ("0-1:raid5", "needs 3 to 2"),
        ("0-3:raid7", "RAID must be"),
        ("0-3", "expected MEMBERS:RAID"),
        ("0-3:5:4:6", "multiple of 4"),
    ] {
        let mut args = vec!["create", "--force", "--group", spec];
        args.extend(img.args());
        let out = stria(&args);
        assert!(!out.status.success(), "{spec} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{spec}: {err}");
    }
}
