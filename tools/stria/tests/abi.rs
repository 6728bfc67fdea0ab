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
	P("status.host_blocks", offsetof(struct stria_status, host_blocks));
	P("status.member_blocks", offsetof(struct stria_status, member_blocks));
	P("status.pool_blocks", offsetof(struct stria_status, pool_blocks));
	P("status.free_blocks", offsetof(struct stria_status, free_blocks));
	P("status.live_blocks", offsetof(struct stria_status, live_blocks));
	P("status.reclaimable", offsetof(struct stria_status, reclaimable_blocks));
	P("status.dying", offsetof(struct stria_status, dying_blocks));
	P("status.raid_stripes", offsetof(struct stria_status, raid_stripes));
	P("status.gc_stripes", offsetof(struct stria_status, gc_stripes));
	P("status.gc_moved", offsetof(struct stria_status, gc_moved_blocks));
	P("gc.size", sizeof(struct stria_gc));
	P("gc.flags", offsetof(struct stria_gc, flags));
	P("gc.index", offsetof(struct stria_gc, index));
	P("gc.until", offsetof(struct stria_gc, until_free_percent));
	P("gc.stripes", offsetof(struct stria_gc, stripes));
	P("gc.freed", offsetof(struct stria_gc, freed_blocks));
	P("gc.reserved", offsetof(struct stria_gc, reserved));
	P("gc.greedy", STRIA_GC_GREEDY);
	P("ioc.gc", STRIA_IOC_GC);
	P("volumes.no_sharing", STRIA_VOLUMES_NO_SHARING);
	P("diff.size", sizeof(struct stria_diff));
	P("diff.index", offsetof(struct stria_diff, index));
	P("diff.id", offsetof(struct stria_diff, id));
	P("diff.other", offsetof(struct stria_diff, other));
	P("diff.how", offsetof(struct stria_diff, how));
	P("diff.maps", STRIA_DIFF_MAPS);
	P("diff.by_track", STRIA_DIFF_BY_TRACK);
	P("diff.by_maps", STRIA_DIFF_BY_MAPS);
	P("diff.start", offsetof(struct stria_diff, start));
	P("diff.nr", offsetof(struct stria_diff, nr_blocks));
	P("diff.bitmap", offsetof(struct stria_diff, bitmap));
	P("diff.changed", offsetof(struct stria_diff, changed));
	P("diff.reserved", offsetof(struct stria_diff, reserved));
	P("diff.max", STRIA_DIFF_MAX_BLOCKS);
	P("ioc.diff", STRIA_IOC_DIFF);
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
	P("volume.size", sizeof(struct stria_volume));
	P("volume.flags", offsetof(struct stria_volume, flags));
	P("volume.index", offsetof(struct stria_volume, index));
	P("volume.op", offsetof(struct stria_volume, op));
	P("volume.id", offsetof(struct stria_volume, id));
	P("volume.form", offsetof(struct stria_volume, form));
	P("volume.size_sectors", offsetof(struct stria_volume, size_sectors));
	P("volume.name", offsetof(struct stria_volume, name));
	P("volume.name_len", sizeof(((struct stria_volume *)0)->name));
	P("volume.track", offsetof(struct stria_volume, track));
	P("volume.reserved", offsetof(struct stria_volume, reserved0));
	P("vinfo.size", sizeof(struct stria_volume_info));
	P("vinfo.id", offsetof(struct stria_volume_info, id));
	P("vinfo.open_count", offsetof(struct stria_volume_info, open_count));
	P("vinfo.size_sectors", offsetof(struct stria_volume_info, size_sectors));
	P("vinfo.map_blocks", offsetof(struct stria_volume_info, map_blocks));
	P("vinfo.map_bytes", offsetof(struct stria_volume_info, map_bytes));
	P("vinfo.name", offsetof(struct stria_volume_info, name));
	P("vinfo.name_len", sizeof(((struct stria_volume_info *)0)->name));
	P("vinfo.disk", offsetof(struct stria_volume_info, disk));
	P("vinfo.disk_len", sizeof(((struct stria_volume_info *)0)->disk));
	P("vinfo.flags", offsetof(struct stria_volume_info, flags));
	P("vinfo.parent_id", offsetof(struct stria_volume_info, parent_id));
	P("vinfo.copy_seq", offsetof(struct stria_volume_info, copy_seq));
	P("vinfo.shared_blocks", offsetof(struct stria_volume_info, shared_blocks));
	P("vinfo.shared_map_bytes", offsetof(struct stria_volume_info, shared_map_bytes));
	P("vinfo.copy_form", offsetof(struct stria_volume_info, copy_form));
	P("vinfo.deltas", offsetof(struct stria_volume_info, deltas));
	P("vinfo.track", offsetof(struct stria_volume_info, track));
	P("vinfo.track_bytes", offsetof(struct stria_volume_info, track_bytes));
	P("vinfo.track_blocks", offsetof(struct stria_volume_info, track_blocks));
	P("track.auto", STRIA_TRACK_AUTO);
	P("track.none", STRIA_TRACK_NONE);
	P("track.bitmap", STRIA_TRACK_BITMAP);
	P("track.multi", STRIA_TRACK_MULTI);
	P("track.partial", STRIA_TRACK_PARTIAL);
	P("copy_form_auto", STRIA_COPY_FORM_AUTO);
	P("copy_form_full", STRIA_COPY_FORM_FULL);
	P("copy_form_changed", STRIA_COPY_FORM_CHANGED);
	P("volume_copy", STRIA_VOLUME_COPY);
	P("vinfo_copy", STRIA_VINFO_COPY);
	P("volumes.size", sizeof(struct stria_volumes));
	P("volumes.index", offsetof(struct stria_volumes, index));
	P("volumes.nr", offsetof(struct stria_volumes, nr_volumes));
	P("volumes.volumes", offsetof(struct stria_volumes, volumes));
	P("ioc.volume", STRIA_IOC_VOLUME);
	P("ioc.volumes", STRIA_IOC_VOLUMES);
	P("op.create", STRIA_VOLUME_CREATE);
	P("op.resize", STRIA_VOLUME_RESIZE);
	P("op.delete", STRIA_VOLUME_DELETE);
	P("volume_name.max", STRIA_VOLUME_NAME_MAX);
	P("max.volumes", STRIA_MAX_VOLUMES);
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
    assert_eq!(c["status.members"], 288);
    assert_eq!(c["status.uuid"], 72);
    assert_eq!(c["status.name"], 88);
    let mb = uapi::Status::MAP_BLOCKS_OFFSET as u64;
    assert_eq!(c["status.map_blocks"], mb);
    assert_eq!(c["status.map_bytes"], mb + 8);
    assert_eq!(c["status.stripes"], mb + 16);
    assert_eq!(c["status.partial"], mb + 24);
    assert_eq!(c["status.host_blocks"], mb + 32);
    assert_eq!(c["status.member_blocks"], mb + 40);
    let pool = uapi::Status::POOL_OFFSET as u64;
    assert_eq!(c["status.pool_blocks"], pool);
    assert_eq!(c["status.free_blocks"], pool + 8);
    assert_eq!(c["status.live_blocks"], pool + 16);
    assert_eq!(c["status.reclaimable"], pool + 24);
    assert_eq!(c["status.dying"], pool + 32);
    assert_eq!(c["status.raid_stripes"], pool + 40);
    assert_eq!(c["status.gc_stripes"], pool + 72);
    assert_eq!(c["status.gc_moved"], pool + 80);
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
        host_blocks: 1000,
        member_blocks: 1420,
        pool_blocks: 9000,
        free_blocks: 800,
        live_blocks: 700,
        reclaimable_blocks: 600,
        dying_blocks: 500,
        raid_stripes: [1, 2, 3, 4],
        gc_stripes: 11,
        gc_moved_blocks: 12,
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

/// Reads the native-endian integer of `n` bytes at `off`.
fn field(raw: &[u8], off: u64, n: usize) -> u64 {
    let off = off as usize;
    let mut a = [0u8; 8];
    a[..n].copy_from_slice(&raw[off..off + n]);
    u64::from_ne_bytes(a)
}

#[test]
fn gc_layout_matches_the_c_header() {
    let c = probe();
    assert_eq!(c["gc.size"], uapi::Gc::SIZE as u64);
    assert_eq!(c["gc.greedy"], u64::from(uapi::GC_GREEDY));
    assert_eq!(c["ioc.gc"], u64::from(uapi::IOC_GC));
    let g = uapi::Gc {
        flags: uapi::GC_GREEDY,
        index: 0x1122_3344,
        until_free_percent: 55,
        stripes: 0x0102_0304_0506_0708,
        freed_blocks: 0x1112_1314_1516_1718,
    };
    let raw = g.encode();
    assert_eq!(field(&raw, 0, 4), uapi::Gc::SIZE as u64);
    assert_eq!(field(&raw, c["gc.flags"], 4), u64::from(uapi::GC_GREEDY));
    assert_eq!(field(&raw, c["gc.index"], 4), 0x1122_3344);
    assert_eq!(field(&raw, c["gc.until"], 4), 55);
    assert_eq!(field(&raw, c["gc.stripes"], 8), 0x0102_0304_0506_0708);
    assert_eq!(field(&raw, c["gc.freed"], 8), 0x1112_1314_1516_1718);
    assert_eq!(c["gc.reserved"] + 16, uapi::Gc::SIZE as u64);
    assert_eq!(uapi::Gc::decode(&raw), Ok(g));
    // Unknown flags and reserved words are refused.
    let mut bad = raw;
    bad[c["gc.flags"] as usize] = 2;
    assert_eq!(uapi::Gc::decode(&bad), Err(uapi::AbiError::Reserved));
    let mut bad = raw;
    bad[c["gc.reserved"] as usize + 3] = 1;
    assert_eq!(uapi::Gc::decode(&bad), Err(uapi::AbiError::Reserved));
}

#[test]
fn diff_layout_matches_the_c_header() {
    let c = probe();
    assert_eq!(c["diff.size"], uapi::Diff::SIZE as u64);
    assert_eq!(c["diff.max"], uapi::DIFF_MAX_BLOCKS);
    assert_eq!(c["ioc.diff"], u64::from(uapi::IOC_DIFF));
    let d = uapi::Diff {
        flags: uapi::DIFF_MAPS,
        how: 0x4142_4344,
        index: 0x0a0b_0c0d,
        id: 0x1122_3344,
        other: 0x5566_7788,
        start: 0x0102_0304_0506_0708,
        nr_blocks: 0x1112_1314_1516_1718,
        bitmap: 0x2122_2324_2526_2728,
        changed: 0x3132_3334_3536_3738,
    };
    let raw = d.encode();
    assert_eq!(field(&raw, 0, 4), uapi::Diff::SIZE as u64);
    assert_eq!(field(&raw, c["diff.index"], 4), 0x0a0b_0c0d);
    assert_eq!(field(&raw, c["diff.id"], 4), 0x1122_3344);
    assert_eq!(field(&raw, c["diff.other"], 4), 0x5566_7788);
    assert_eq!(field(&raw, 4, 4), u64::from(uapi::DIFF_MAPS));
    assert_eq!(field(&raw, c["diff.how"], 4), 0x4142_4344);
    assert_eq!(c["diff.maps"], u64::from(uapi::DIFF_MAPS));
    assert_eq!(c["diff.by_track"], u64::from(uapi::DIFF_BY_TRACK));
    assert_eq!(c["diff.by_maps"], u64::from(uapi::DIFF_BY_MAPS));
    assert_eq!(field(&raw, c["diff.start"], 8), 0x0102_0304_0506_0708);
    assert_eq!(field(&raw, c["diff.nr"], 8), 0x1112_1314_1516_1718);
    assert_eq!(field(&raw, c["diff.bitmap"], 8), 0x2122_2324_2526_2728);
    assert_eq!(field(&raw, c["diff.changed"], 8), 0x3132_3334_3536_3738);
    assert_eq!(c["diff.reserved"] + 8, uapi::Diff::SIZE as u64);
    assert_eq!(uapi::Diff::decode(&raw), Ok(d));
    // Unknown flags and the reserved word must be zero.
    for off in [5, c["diff.reserved"] as usize + 7] {
        let mut bad = raw;
        bad[off] = 1;
        assert_eq!(uapi::Diff::decode(&bad), Err(uapi::AbiError::Reserved));
    }
}

#[test]
fn volume_layouts_match_the_c_header() {
    let c = probe();
    assert_eq!(c["volume.size"], uapi::Volume::SIZE as u64);
    assert_eq!(c["volume.id"], uapi::Volume::ID_OFFSET as u64);
    assert_eq!(c["volume.name_len"], uapi::VOLUME_NAME_MAX as u64);
    assert_eq!(c["vinfo.size"], uapi::VolumeInfo::SIZE as u64);
    assert_eq!(c["vinfo.name_len"], uapi::VOLUME_NAME_MAX as u64);
    assert_eq!(c["volumes.size"], uapi::Volumes::SIZE as u64);

    // Every field the codec writes lands where C has it.
    let mut v = uapi::Volume {
        index: 0x1122_3344,
        op: 0x5566_7788,
        id: 0x99aa_bbcc,
        form: 0x0d0e_0f10,
        track: 0x1718_191a,
        size_sectors: 0x0102_0304_0506_0708,
        ..Default::default()
    };
    v.name = [b'n'; uapi::VOLUME_NAME_MAX];
    let raw = v.encode();
    assert_eq!(field(&raw, 0, 4), uapi::Volume::SIZE as u64);
    assert_eq!(field(&raw, c["volume.flags"], 4), 0);
    assert_eq!(field(&raw, c["volume.index"], 4), 0x1122_3344);
    assert_eq!(field(&raw, c["volume.op"], 4), 0x5566_7788);
    assert_eq!(field(&raw, c["volume.id"], 4), 0x99aa_bbcc);
    assert_eq!(field(&raw, c["volume.form"], 4), 0x0d0e_0f10);
    assert_eq!(field(&raw, c["volume.track"], 4), 0x1718_191a);
    assert_eq!(
        field(&raw, c["volume.size_sectors"], 8),
        0x0102_0304_0506_0708
    );
    let name = c["volume.name"] as usize;
    assert!(raw[name..name + uapi::VOLUME_NAME_MAX]
        .iter()
        .all(|&b| b == b'n'));
    // The name ends where the divergence form begins, and the reserved
    // words after it run to the end.
    assert_eq!(c["volume.track"], c["volume.name"] + c["volume.name_len"]);
    assert_eq!(c["volume.reserved"], c["volume.track"] + 4);
    let reserved = c["volume.reserved"] as usize;
    assert_eq!(reserved + 12, uapi::Volume::SIZE);
    assert!(raw[reserved..].iter().all(|&b| b == 0));

    // The same for the second entry of a listing.
    let mut vs = uapi::Volumes {
        index: 0x0a0b_0c0d,
        nr_volumes: 0x0e0f_1011,
        ..Default::default()
    };
    vs.volumes[1] = uapi::VolumeInfo {
        id: 0x2122_2324,
        open_count: 0x2526_2728,
        size_sectors: 0x3132_3334_3536_3738,
        map_blocks: 0x4142_4344_4546_4748,
        map_bytes: 0x5152_5354_5556_5758,
        name: [b'v'; uapi::VOLUME_NAME_MAX],
        disk: [b'd'; 32],
        flags: 0x6162_6364,
        parent_id: 0x6566_6768,
        copy_seq: 0x7172_7374_7576_7778,
        shared_blocks: 0x8182_8384_8586_8788,
        shared_map_bytes: 0x9192_9394_9596_9798,
        copy_form: 0xa1a2_a3a4,
        deltas: 0xb1b2_b3b4,
        track: 0xc1c2_c3c4,
        track_bytes: 0xd1d2_d3d4_d5d6_d7d8,
        track_blocks: 0xe1e2_e3e4_e5e6_e7e8,
    };
    let mut raw = [0u8; uapi::Volumes::SIZE];
    vs.encode(&mut raw);
    assert_eq!(field(&raw, 0, 4), uapi::Volumes::SIZE as u64);
    assert_eq!(field(&raw, c["volumes.index"], 4), 0x0a0b_0c0d);
    assert_eq!(field(&raw, c["volumes.nr"], 4), 0x0e0f_1011);
    let e = c["volumes.volumes"] + c["vinfo.size"];
    assert_eq!(field(&raw, e + c["vinfo.id"], 4), 0x2122_2324);
    assert_eq!(field(&raw, e + c["vinfo.flags"], 4), 0x6162_6364);
    assert_eq!(field(&raw, e + c["vinfo.parent_id"], 4), 0x6566_6768);
    assert_eq!(
        field(&raw, e + c["vinfo.copy_seq"], 8),
        0x7172_7374_7576_7778
    );
    assert_eq!(
        field(&raw, e + c["vinfo.shared_blocks"], 8),
        0x8182_8384_8586_8788
    );
    assert_eq!(
        field(&raw, e + c["vinfo.shared_map_bytes"], 8),
        0x9192_9394_9596_9798
    );
    assert_eq!(field(&raw, e + c["vinfo.copy_form"], 4), 0xa1a2_a3a4);
    assert_eq!(field(&raw, e + c["vinfo.deltas"], 4), 0xb1b2_b3b4);
    assert_eq!(field(&raw, e + c["vinfo.track"], 4), 0xc1c2_c3c4);
    assert_eq!(
        field(&raw, e + c["vinfo.track_bytes"], 8),
        0xd1d2_d3d4_d5d6_d7d8
    );
    assert_eq!(
        field(&raw, e + c["vinfo.track_blocks"], 8),
        0xe1e2_e3e4_e5e6_e7e8
    );
    assert_eq!(c["vinfo.track_blocks"] + 8, c["vinfo.size"]);
    assert_eq!(c["track.auto"], u64::from(uapi::TRACK_AUTO));
    assert_eq!(c["track.none"], u64::from(uapi::TRACK_NONE));
    assert_eq!(c["track.bitmap"], u64::from(uapi::TRACK_BITMAP));
    assert_eq!(c["track.multi"], u64::from(uapi::TRACK_MULTI));
    assert_eq!(c["track.partial"], u64::from(uapi::TRACK_PARTIAL));
    assert_eq!(c["copy_form_auto"], u64::from(uapi::COPY_FORM_AUTO));
    assert_eq!(c["copy_form_full"], u64::from(uapi::COPY_FORM_FULL));
    assert_eq!(c["copy_form_changed"], u64::from(uapi::COPY_FORM_CHANGED));
    assert_eq!(c["volume_copy"], u64::from(uapi::VOLUME_COPY));
    assert_eq!(c["vinfo_copy"], u64::from(uapi::VINFO_COPY));
    assert_eq!(field(&raw, e + c["vinfo.open_count"], 4), 0x2526_2728);
    assert_eq!(
        field(&raw, e + c["vinfo.size_sectors"], 8),
        0x3132_3334_3536_3738
    );
    assert_eq!(
        field(&raw, e + c["vinfo.map_blocks"], 8),
        0x4142_4344_4546_4748
    );
    assert_eq!(
        field(&raw, e + c["vinfo.map_bytes"], 8),
        0x5152_5354_5556_5758
    );
    let name = (e + c["vinfo.name"]) as usize;
    assert!(raw[name..name + uapi::VOLUME_NAME_MAX]
        .iter()
        .all(|&b| b == b'v'));
    let disk = (e + c["vinfo.disk"]) as usize;
    assert_eq!(c["vinfo.disk_len"], 32);
    assert!(raw[disk..disk + 32].iter().all(|&b| b == b'd'));
    assert_eq!(c["vinfo.disk"] + c["vinfo.disk_len"], c["vinfo.flags"]);
    assert_eq!(c["vinfo.shared_map_bytes"] + 8, c["vinfo.copy_form"]);
    assert_eq!(c["vinfo.deltas"] + 4, c["vinfo.track"]);
    // Entries 0 and 2 stay zero.
    let first = c["volumes.volumes"] as usize;
    let size = c["vinfo.size"] as usize;
    assert!(raw[first..first + size].iter().all(|&b| b == 0));
    assert!(raw[first + 2 * size..first + 3 * size]
        .iter()
        .all(|&b| b == 0));
}

#[test]
fn volume_requests_ops_and_limits_match_the_c_header() {
    let c = probe();
    assert_eq!(c["ioc.volume"], u64::from(uapi::IOC_VOLUME));
    assert_eq!(c["ioc.volumes"], u64::from(uapi::IOC_VOLUMES));
    assert_eq!(c["op.create"], u64::from(uapi::VOLUME_CREATE));
    assert_eq!(c["op.resize"], u64::from(uapi::VOLUME_RESIZE));
    assert_eq!(c["op.delete"], u64::from(uapi::VOLUME_DELETE));
    assert_eq!(c["volume_name.max"], uapi::VOLUME_NAME_MAX as u64);
    assert_eq!(c["max.volumes"], uapi::MAX_VOLUMES as u64);
    // The size must fit the request number's 14-bit size field.
    const { assert!(uapi::Volumes::SIZE < 1 << 14) };
    assert_eq!(
        (uapi::IOC_VOLUMES >> 16) & 0x3fff,
        uapi::Volumes::SIZE as u32
    );
    // Both directions: the kernel writes the answer back.
    assert_eq!(uapi::IOC_VOLUME >> 30, 3);
    assert_eq!(uapi::IOC_VOLUMES >> 30, 3);
}

#[test]
fn volume_round_trips_and_checks_its_header() {
    let mut v = uapi::Volume {
        index: 5,
        op: uapi::VOLUME_RESIZE,
        id: 3,
        size_sectors: 8 << 20,
        ..Default::default()
    };
    v.name[..3].copy_from_slice(b"web");
    let raw = v.encode();
    assert_eq!(uapi::Volume::decode(&raw), Ok(v));
    let mut bad = raw;
    bad[0] = 79;
    assert_eq!(uapi::Volume::decode(&bad), Err(uapi::AbiError::Size));
    // flags and both reserved words must be zero; the form is the
    // kernel's to check.
    for off in [4, 68, 72, uapi::Volume::SIZE - 1] {
        let mut bad = raw;
        bad[off] = 1;
        assert_eq!(
            uapi::Volume::decode(&bad),
            Err(uapi::AbiError::Reserved),
            "byte {off}"
        );
    }
    // The name may fill its field; the kernel checks what is in it.
    v.name = [b'x'; uapi::VOLUME_NAME_MAX];
    assert_eq!(uapi::Volume::decode(&v.encode()), Ok(v));
}

#[test]
fn volumes_round_trip() {
    let mut vs = uapi::Volumes {
        index: 9,
        nr_volumes: 3,
        ..Default::default()
    };
    for (i, e) in vs.volumes.iter_mut().enumerate().take(3) {
        let id = i as u32 * 2 + 1;
        *e = uapi::VolumeInfo {
            id,
            open_count: i as u32,
            size_sectors: 8 * (u64::from(id) << 20),
            map_blocks: 100 * i as u64,
            map_bytes: 4096 * i as u64 + 64,
            ..Default::default()
        };
        let name = format!("vol{i}");
        e.name[..name.len()].copy_from_slice(name.as_bytes());
        let disk = if id == 1 {
            "stria9".to_string()
        } else {
            format!("stria9v{id}")
        };
        e.disk[..disk.len()].copy_from_slice(disk.as_bytes());
    }
    vs.volumes[uapi::MAX_VOLUMES - 1].id = 64;
    let mut raw = [0u8; uapi::Volumes::SIZE];
    vs.encode(&mut raw);
    assert_eq!(uapi::Volumes::decode(&raw), Ok(vs));
    assert_eq!(uapi::Volumes::decode_request(&raw), Ok((9, 0)));
    let mut req = [0u8; uapi::Volumes::SIZE];
    uapi::Volumes::encode_request(&mut req, 7, uapi::VOLUMES_NO_SHARING);
    assert_eq!(
        probe()["volumes.no_sharing"],
        u64::from(uapi::VOLUMES_NO_SHARING)
    );
    assert_eq!(
        uapi::Volumes::decode_request(&req),
        Ok((7, uapi::VOLUMES_NO_SHARING))
    );
    let mut bad = raw;
    bad[0] = 1;
    assert_eq!(uapi::Volumes::decode(&bad), Err(uapi::AbiError::Size));
    assert_eq!(
        uapi::Volumes::decode_request(&bad),
        Err(uapi::AbiError::Size)
    );
    let mut bad = raw;
    bad[4] = 2;
    assert_eq!(
        uapi::Volumes::decode_request(&bad),
        Err(uapi::AbiError::Reserved)
    );

    // The kernel's way: head and entries one by one.
    let mut piecewise = [0u8; uapi::Volumes::SIZE];
    uapi::Volumes::encode_head(&mut piecewise, vs.index, vs.nr_volumes);
    for (i, e) in vs.volumes.iter().enumerate() {
        uapi::Volumes::encode_info(&mut piecewise, i, e);
    }
    assert_eq!(piecewise, raw);
    // An entry beyond the table is ignored, not written out of bounds.
    uapi::Volumes::encode_info(&mut piecewise, uapi::MAX_VOLUMES, &vs.volumes[0]);
    assert_eq!(piecewise, raw);
}
