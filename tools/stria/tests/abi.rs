// SPDX-License-Identifier: GPL-2.0

//! The Rust view of the ioctl ABI must match `include/uapi/linux/stria.h`
//! byte for byte: compile a C program against the header and compare every
//! structure's size and every field's offset and size with the `repr(C)`
//! types, and every constant and request number.

#[path = "../../../drivers/block/stria/uapi.rs"]
#[allow(dead_code)]
mod uapi;

use std::collections::HashMap;
use std::mem::offset_of;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;
use zerocopy::FromZeros;
use zerocopy::IntoBytes;

/// The constants of the header, printed by the probe.
const CONSTANTS: &str = r#"
	P("gc.greedy", STRIA_GC_GREEDY);
	P("ioc.gc", STRIA_IOC_GC);
	P("volumes.no_sharing", STRIA_VOLUMES_NO_SHARING);
	P("diff.maps", STRIA_DIFF_MAPS);
	P("diff.by_track", STRIA_DIFF_BY_TRACK);
	P("diff.by_maps", STRIA_DIFF_BY_MAPS);
	P("diff.max", STRIA_DIFF_MAX_BLOCKS);
	P("ioc.diff", STRIA_IOC_DIFF);
	P("layout.raid0", STRIA_LAYOUT_RAID0);
	P("layout.log", STRIA_LAYOUT_LOG);
	P("name.max", STRIA_NAME_MAX);
	P("ioctl.magic", STRIA_IOCTL_MAGIC);
	P("ioc.assemble", STRIA_IOC_ASSEMBLE);
	P("ioc.stop", STRIA_IOC_STOP);
	P("ioc.status", STRIA_IOC_STATUS);
	P("max.members", STRIA_MAX_MEMBERS);
	P("min.members", STRIA_MIN_MEMBERS);
	P("max.arrays", STRIA_MAX_ARRAYS);
	P("path.max", STRIA_PATH_MAX);
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
	P("ioc.volume", STRIA_IOC_VOLUME);
	P("ioc.volumes", STRIA_IOC_VOLUMES);
	P("op.create", STRIA_VOLUME_CREATE);
	P("op.resize", STRIA_VOLUME_RESIZE);
	P("op.delete", STRIA_VOLUME_DELETE);
	P("volume_name.max", STRIA_VOLUME_NAME_MAX);
	P("max.volumes", STRIA_MAX_VOLUMES);
"#;

/// One structure: its C name, its Rust size, and each field's name, Rust
/// offset and Rust size, in order.
struct Layout {
    c: &'static str,
    size: usize,
    fields: Vec<(&'static str, usize, usize)>,
}

/// The [`Layout`] of Rust type `$t`, named `$c` in C, whose fields are
/// `$f...`: all of them, or the destructuring does not compile.
macro_rules! layout {
    ($c:literal, $t:path, [$($f:ident),* $(,)?]) => {{
        let v = <$t>::new_zeroed();
        let $t { $($f: _),* } = v;
        Layout {
            c: $c,
            size: size_of::<$t>(),
            fields: vec![$((stringify!($f), offset_of!($t, $f), size_of_val(&v.$f))),*],
        }
    }};
}

/// Every structure of the header.
fn layouts() -> Vec<Layout> {
    vec![
        layout!(
            "stria_assemble",
            uapi::Assemble,
            [size, flags, nr_members, index, paths, reserved]
        ),
        layout!("stria_stop", uapi::Stop, [size, flags, index, reserved]),
        layout!(
            "stria_member_info",
            uapi::MemberInfo,
            [major, minor, sectors, free_sectors, reserved]
        ),
        layout!(
            "stria_status",
            uapi::Status,
            [
                size,
                flags,
                index,
                nr_members,
                layout,
                chunk_sectors,
                open_count,
                reserved0,
                capacity_sectors,
                reads,
                writes,
                flushes,
                errors,
                array_uuid,
                name,
                map_blocks,
                map_bytes,
                stripes,
                partial_stripes,
                host_blocks,
                member_blocks,
                pool_blocks,
                free_blocks,
                live_blocks,
                reclaimable_blocks,
                dying_blocks,
                raid_stripes,
                gc_stripes,
                gc_moved_blocks,
                members,
            ]
        ),
        layout!(
            "stria_volume",
            uapi::Volume,
            [
                size,
                flags,
                index,
                op,
                id,
                form,
                size_sectors,
                name,
                track,
                reserved0,
                reserved,
            ]
        ),
        layout!(
            "stria_volume_info",
            uapi::VolumeInfo,
            [
                id,
                open_count,
                size_sectors,
                map_blocks,
                map_bytes,
                name,
                disk,
                flags,
                parent_id,
                copy_seq,
                shared_blocks,
                shared_map_bytes,
                copy_form,
                deltas,
                track,
                reserved0,
                track_bytes,
                track_blocks,
            ]
        ),
        layout!(
            "stria_volumes",
            uapi::Volumes,
            [size, flags, index, nr_volumes, volumes]
        ),
        layout!(
            "stria_gc",
            uapi::Gc,
            [
                size,
                flags,
                index,
                until_free_percent,
                stripes,
                freed_blocks,
                reserved,
            ]
        ),
        layout!(
            "stria_diff",
            uapi::Diff,
            [size, flags, index, id, other, how, start, nr_blocks, bitmap, changed, reserved]
        ),
    ]
}

/// The probe's C source: the constants, then `STRUCT` (its size),
/// `STRUCT.FIELD` (the offset) and `STRUCT.FIELD.size` of every layout.
fn probe_source() -> String {
    let mut body = String::from(CONSTANTS);
    for l in layouts() {
        let s = l.c;
        body += &format!("\tP(\"{s}\", sizeof(struct {s}));\n");
        for (f, _, _) in &l.fields {
            body += &format!("\tP(\"{s}.{f}\", offsetof(struct {s}, {f}));\n");
            body += &format!("\tP(\"{s}.{f}.size\", sizeof(((struct {s} *)0)->{f}));\n");
        }
    }
    format!(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/stria.h>\n\
         #define P(name, v) printf(\"%s %llu\\n\", name, (unsigned long long)(v))\n\
         int main(void)\n{{\n{body}\treturn 0;\n}}\n"
    )
}

fn probe() -> HashMap<String, u64> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("stria-abi-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let bin = dir.join("probe");
    std::fs::write(&src, probe_source()).unwrap();
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
    for l in layouts() {
        let s = l.c;
        assert_eq!(c[s], l.size as u64, "sizeof(struct {s})");
        // The fields follow one another with no gap and fill the
        // structure: neither side has padding or a field the other lacks.
        let mut end = 0;
        for (f, off, size) in &l.fields {
            assert_eq!(c[&format!("{s}.{f}")], *off as u64, "{s}.{f} offset");
            assert_eq!(c[&format!("{s}.{f}.size")], *size as u64, "{s}.{f} size");
            assert_eq!(*off, end, "{s}.{f} follows the field before it");
            end = off + size;
        }
        assert_eq!(end, l.size, "{s} ends with its last field");
    }
}

#[test]
fn request_numbers_and_limits_match_the_c_header() {
    let c = probe();
    assert_eq!(c["ioc.assemble"], u64::from(uapi::IOC_ASSEMBLE));
    assert_eq!(c["ioc.stop"], u64::from(uapi::IOC_STOP));
    assert_eq!(c["ioc.status"], u64::from(uapi::IOC_STATUS));
    assert_eq!(c["ioc.volume"], u64::from(uapi::IOC_VOLUME));
    assert_eq!(c["ioc.volumes"], u64::from(uapi::IOC_VOLUMES));
    assert_eq!(c["ioc.gc"], u64::from(uapi::IOC_GC));
    assert_eq!(c["ioc.diff"], u64::from(uapi::IOC_DIFF));
    assert_eq!(c["ioctl.magic"], u64::from(uapi::IOCTL_MAGIC));
    assert_eq!(c["max.members"], u64::from(uapi::MAX_MEMBERS));
    assert_eq!(c["min.members"], u64::from(uapi::MIN_MEMBERS));
    assert_eq!(c["max.arrays"], u64::from(uapi::MAX_ARRAYS));
    assert_eq!(c["path.max"], uapi::PATH_MAX as u64);
    assert_eq!(c["name.max"], uapi::NAME_MAX as u64);
    assert_eq!(c["layout.raid0"], u64::from(uapi::LAYOUT_RAID0));
    assert_eq!(c["layout.log"], u64::from(uapi::LAYOUT_LOG));
    assert_eq!(c["volume_name.max"], uapi::VOLUME_NAME_MAX as u64);
    assert_eq!(c["max.volumes"], uapi::MAX_VOLUMES as u64);
    assert_eq!(c["diff.max"], uapi::DIFF_MAX_BLOCKS);
    // The largest structure must fit the request number's 14-bit size
    // field.
    const { assert!(size_of::<uapi::Volumes>() < 1 << 14) };
    assert_eq!(
        (uapi::IOC_VOLUMES >> 16) & 0x3fff,
        size_of::<uapi::Volumes>() as u32
    );
    // Both directions: the kernel writes the answer back.
    assert_eq!(uapi::IOC_VOLUME >> 30, 3);
    assert_eq!(uapi::IOC_VOLUMES >> 30, 3);
}

#[test]
fn flags_and_forms_match_the_c_header() {
    let c = probe();
    assert_eq!(c["gc.greedy"], u64::from(uapi::GC_GREEDY));
    assert_eq!(c["volumes.no_sharing"], u64::from(uapi::VOLUMES_NO_SHARING));
    assert_eq!(c["diff.maps"], u64::from(uapi::DIFF_MAPS));
    assert_eq!(c["diff.by_track"], u64::from(uapi::DIFF_BY_TRACK));
    assert_eq!(c["diff.by_maps"], u64::from(uapi::DIFF_BY_MAPS));
    assert_eq!(c["op.create"], u64::from(uapi::VOLUME_CREATE));
    assert_eq!(c["op.resize"], u64::from(uapi::VOLUME_RESIZE));
    assert_eq!(c["op.delete"], u64::from(uapi::VOLUME_DELETE));
    assert_eq!(c["volume_copy"], u64::from(uapi::VOLUME_COPY));
    assert_eq!(c["vinfo_copy"], u64::from(uapi::VINFO_COPY));
    assert_eq!(c["track.auto"], u64::from(uapi::TRACK_AUTO));
    assert_eq!(c["track.none"], u64::from(uapi::TRACK_NONE));
    assert_eq!(c["track.bitmap"], u64::from(uapi::TRACK_BITMAP));
    assert_eq!(c["track.multi"], u64::from(uapi::TRACK_MULTI));
    assert_eq!(c["track.partial"], u64::from(uapi::TRACK_PARTIAL));
    assert_eq!(c["copy_form_auto"], u64::from(uapi::COPY_FORM_AUTO));
    assert_eq!(c["copy_form_full"], u64::from(uapi::COPY_FORM_FULL));
    assert_eq!(c["copy_form_changed"], u64::from(uapi::COPY_FORM_CHANGED));
}

/// The native-endian `u32` at byte `off` of `raw`.
fn word(raw: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(raw[off..off + 4].try_into().unwrap())
}

#[test]
fn defaults_carry_their_size_and_pass_the_checks() {
    let c = probe();
    macro_rules! sized {
        ($($c:literal => $t:path),* $(,)?) => {$(
            let v = <$t>::default();
            assert_eq!(u64::from(word(v.as_bytes(), 0)), c[$c], "{}", $c);
            assert!(v.as_bytes()[4..].iter().all(|&b| b == 0), "{}", $c);
            assert_eq!(v.check(), Ok(()), "{}", $c);
            let mut bad = v;
            bad.size -= 1;
            assert_eq!(bad.check(), Err(uapi::AbiError::Size), "{}", $c);
            let mut bad = v;
            bad.flags = 1 << 31;
            assert_eq!(bad.check(), Err(uapi::AbiError::Reserved), "{}", $c);
        )*};
    }
    sized!(
        "stria_assemble" => uapi::Assemble,
        "stria_stop" => uapi::Stop,
        "stria_status" => uapi::Status,
        "stria_volume" => uapi::Volume,
        "stria_volumes" => uapi::Volumes,
        "stria_gc" => uapi::Gc,
        "stria_diff" => uapi::Diff,
    );
}

#[test]
fn reserved_fields_must_be_zero() {
    use uapi::AbiError::Reserved;
    let a = uapi::Assemble::default();
    for i in 0..4 {
        let mut bad = a;
        bad.reserved[i] = 1;
        assert_eq!(bad.check(), Err(Reserved));
    }
    let s = uapi::Stop::default();
    assert_eq!(uapi::Stop { reserved: 9, ..s }.check(), Err(Reserved));
    let v = uapi::Volume::default();
    assert_eq!(uapi::Volume { reserved0: 1, ..v }.check(), Err(Reserved));
    assert_eq!(uapi::Volume { reserved: 1, ..v }.check(), Err(Reserved));
    // The name may fill its field, and the forms are the kernel's to
    // check.
    let named = uapi::Volume {
        name: [b'x'; uapi::VOLUME_NAME_MAX],
        form: 9,
        track: 9,
        ..v
    };
    assert_eq!(named.check(), Ok(()));
    let g = uapi::Gc::default();
    assert_eq!(
        uapi::Gc {
            reserved: [0, 1],
            ..g
        }
        .check(),
        Err(Reserved)
    );
    let d = uapi::Diff::default();
    assert_eq!(uapi::Diff { reserved: 1, ..d }.check(), Err(Reserved));
    // The answer fields of a query are the kernel's: not checked.
    let mut st = uapi::Status {
        index: 3,
        nr_members: 2,
        ..Default::default()
    };
    st.members[1].reserved = 7;
    assert_eq!(st.check(), Ok(()));
    let mut vs = uapi::Volumes::default();
    vs.volumes[63].reserved0 = 7;
    assert_eq!(vs.check(), Ok(()));
}

#[test]
fn known_flags_pass_the_checks() {
    let g = uapi::Gc {
        flags: uapi::GC_GREEDY,
        ..Default::default()
    };
    assert_eq!(g.check(), Ok(()));
    let d = uapi::Diff {
        flags: uapi::DIFF_MAPS,
        how: uapi::DIFF_BY_MAPS,
        ..Default::default()
    };
    assert_eq!(d.check(), Ok(()));
    let vs = uapi::Volumes {
        flags: uapi::VOLUMES_NO_SHARING,
        ..Default::default()
    };
    assert_eq!(vs.check(), Ok(()));
    for flags in [2, 1 << 31] {
        let err = Err(uapi::AbiError::Reserved);
        assert_eq!(uapi::Gc { flags, ..g }.check(), err);
        assert_eq!(uapi::Diff { flags, ..d }.check(), err);
        assert_eq!(uapi::Volumes { flags, ..vs }.check(), err);
    }
}

#[test]
fn fields_land_where_c_has_them() {
    let c = probe();
    // A second volume entry: its bytes are where the C structure puts
    // `volumes[1]`, and the entries around it stay zero.
    let mut vs = uapi::Volumes::new_zeroed();
    vs.volumes[1].track_blocks = 0xe1e2_e3e4_e5e6_e7e8;
    vs.volumes[1].name = [b'v'; uapi::VOLUME_NAME_MAX];
    let raw = vs.as_bytes();
    let entry = (c["stria_volumes.volumes"] + c["stria_volume_info"]) as usize;
    let name = entry + c["stria_volume_info.name"] as usize;
    assert!(raw[name..name + uapi::VOLUME_NAME_MAX]
        .iter()
        .all(|&b| b == b'v'));
    let off = entry + c["stria_volume_info.track_blocks"] as usize;
    assert_eq!(
        u64::from_ne_bytes(raw[off..off + 8].try_into().unwrap()),
        0xe1e2_e3e4_e5e6_e7e8
    );
    let nonzero = raw.iter().filter(|&&b| b != 0).count();
    assert_eq!(nonzero, uapi::VOLUME_NAME_MAX + 8);
}
