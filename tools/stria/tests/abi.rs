// SPDX-License-Identifier: GPL-2.0

//! The Rust view of the ioctl ABI must match `include/uapi/linux/stria.h`
//! byte for byte: compile a C program against the header and compare.

#[path = "../../../drivers/block/stria/uapi.rs"]
#[allow(dead_code)]
mod uapi;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;

const PROBE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <linux/stria.h>
#define P(name, v) printf("%s %llu\n", name, (unsigned long long)(v))
int main(void)
{
	P("assemble.size", sizeof(struct stria_assemble));
	P("assemble.index", offsetof(struct stria_assemble, index));
	P("assemble.paths", offsetof(struct stria_assemble, paths));
	P("stop.size", sizeof(struct stria_stop));
	P("stop.index", offsetof(struct stria_stop, index));
	P("member.size", sizeof(struct stria_member_info));
	P("status.size", sizeof(struct stria_status));
	P("status.capacity", offsetof(struct stria_status, capacity_sectors));
	P("status.errors", offsetof(struct stria_status, errors));
	P("status.members", offsetof(struct stria_status, members));
	P("status.uuid", offsetof(struct stria_status, array_uuid));
	P("status.name", offsetof(struct stria_status, name));
	P("status.map_blocks", offsetof(struct stria_status, map_blocks));
	P("status.map_bytes", offsetof(struct stria_status, map_bytes));
	P("status.stripes", offsetof(struct stria_status, stripes));
	P("status.partial", offsetof(struct stria_status, partial_stripes));
	P("member.free", offsetof(struct stria_member_info, free_sectors));
	P("layout.log", STRIA_LAYOUT_LOG);
	P("name.max", STRIA_NAME_MAX);
	P("ioc.assemble", STRIA_IOC_ASSEMBLE);
	P("ioc.stop", STRIA_IOC_STOP);
	P("ioc.status", STRIA_IOC_STATUS);
	P("max.members", STRIA_MAX_MEMBERS);
	P("min.members", STRIA_MIN_MEMBERS);
	P("max.arrays", STRIA_MAX_ARRAYS);
	P("path.max", STRIA_PATH_MAX);
	return 0;
}
"#;

fn probe() -> HashMap<String, u64> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("stria-abi-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let bin = dir.join("probe");
    std::fs::write(&src, PROBE).unwrap();
    let st = Command::new("cc")
        .arg("-I")
        .arg(root.join("include/uapi"))
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .status()
        .expect("cc runs");
    assert!(st.success(), "the uapi header does not compile");
    let out = Command::new(&bin).output().expect("probe runs");
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn layouts_match_the_c_header() {
    let c = probe();
    assert_eq!(c["assemble.size"], uapi::Assemble::SIZE as u64);
    assert_eq!(c["assemble.index"], uapi::Assemble::INDEX_OFFSET as u64);
    assert_eq!(c["assemble.paths"], 16);
    assert_eq!(c["stop.size"], uapi::Stop::SIZE as u64);
    assert_eq!(c["stop.index"], 8);
    assert_eq!(c["member.size"], uapi::MemberInfo::SIZE as u64);
    assert_eq!(c["status.size"], uapi::Status::SIZE as u64);
    assert_eq!(c["status.capacity"], 32);
    assert_eq!(c["status.errors"], 64);
    assert_eq!(c["status.members"], 184);
    assert_eq!(c["status.uuid"], 72);
    assert_eq!(c["status.name"], 88);
    let mb = uapi::Status::MAP_BLOCKS_OFFSET as u64;
    assert_eq!(c["status.map_blocks"], mb);
    assert_eq!(c["status.map_bytes"], mb + 8);
    assert_eq!(c["status.stripes"], mb + 16);
    assert_eq!(c["status.partial"], mb + 24);
    assert_eq!(c["member.free"], uapi::MemberInfo::FREE_OFFSET as u64);
    assert_eq!(c["layout.log"], u64::from(uapi::LAYOUT_LOG));
    assert_eq!(c["name.max"], uapi::NAME_MAX as u64);
}

#[test]
fn request_numbers_and_limits_match_the_c_header() {
    let c = probe();
    assert_eq!(c["ioc.assemble"], u64::from(uapi::IOC_ASSEMBLE));
    assert_eq!(c["ioc.stop"], u64::from(uapi::IOC_STOP));
    assert_eq!(c["ioc.status"], u64::from(uapi::IOC_STATUS));
    assert_eq!(c["max.members"], u64::from(uapi::MAX_MEMBERS));
    assert_eq!(c["min.members"], u64::from(uapi::MIN_MEMBERS));
    assert_eq!(c["max.arrays"], u64::from(uapi::MAX_ARRAYS));
    assert_eq!(c["path.max"], uapi::PATH_MAX as u64);
}

#[test]
fn assemble_round_trips_and_checks_its_header() {
    let a = uapi::Assemble {
        nr_members: 4,
        index: 7,
        paths: 0xdead_beef_0000,
    };
    let raw = a.encode();
    assert_eq!(uapi::Assemble::decode(&raw), Ok(a));
    let mut bad = raw;
    bad[0] = 55;
    assert_eq!(uapi::Assemble::decode(&bad), Err(uapi::AbiError::Size));
    let mut bad = raw;
    bad[4] = 1;
    assert_eq!(uapi::Assemble::decode(&bad), Err(uapi::AbiError::Reserved));
    let mut bad = raw;
    bad[uapi::Assemble::SIZE - 1] = 1;
    assert_eq!(uapi::Assemble::decode(&bad), Err(uapi::AbiError::Reserved));
}

#[test]
fn stop_and_status_round_trip() {
    let s = uapi::Stop { index: 3 };
    assert_eq!(uapi::Stop::decode(&s.encode()), Ok(s));
    let mut bad = s.encode();
    bad[12] = 9;
    assert_eq!(uapi::Stop::decode(&bad), Err(uapi::AbiError::Reserved));

    let mut st = uapi::Status {
        index: 2,
        nr_members: 2,
        capacity_sectors: 1 << 30,
        errors: 5,
        map_blocks: 77,
        map_bytes: 4096 + 8,
        stripes: 9,
        partial_stripes: 4,
        ..Default::default()
    };
    st.array_uuid = [7; 16];
    st.name[..5].copy_from_slice(b"pool0");
    st.members[1] = uapi::MemberInfo {
        major: 254,
        minor: 16,
        sectors: 12345,
        free_sectors: 999,
    };
    let mut raw = [0u8; uapi::Status::SIZE];
    st.encode(&mut raw);
    assert_eq!(uapi::Status::decode(&raw), Ok(st));
    assert_eq!(uapi::Status::decode_request(&raw), Ok(2));
}
