// SPDX-License-Identifier: GPL-2.0

//! Feeds malformed requests to `/dev/stria-control` and checks that each
//! gets the right errno, then that a well-formed request still works.
//!
//! Usage: `stria-ioctl-test A B C D`: four unused block devices where
//! `stria create A B` and `stria create C D` made two arrays.  D's
//! superblocks are wiped along the way.  Prints one line per case and exits
//! non-zero on any mismatch.

#[path = "../../../../../drivers/block/stria/uapi.rs"]
#[allow(dead_code)]
mod uapi;

use nix::errno::Errno;
use nix::unistd::Uid;
use std::fs::File;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::fd::RawFd;
use zerocopy::FromBytes;
use zerocopy::IntoBytes;

/// Issues `cmd` with a pointer to `buf` and returns the errno (or success).
fn ioctl(fd: RawFd, cmd: u32, buf: *mut u8) -> Result<(), Errno> {
    // SAFETY: Every buffer passed is at least as large as the size `cmd`
    // encodes, or deliberately invalid (the kernel must cope).
    let r = unsafe { nix::libc::ioctl(fd, cmd as nix::libc::c_ulong, buf) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Issues `cmd` on the structure `req`, which the kernel may write back.
fn ioctl_on<T: IntoBytes + FromBytes>(fd: RawFd, cmd: u32, req: &mut T) -> Result<(), Errno> {
    ioctl(fd, cmd, req.as_mut_bytes().as_mut_ptr())
}

fn paths(list: &[&str]) -> Vec<u8> {
    let mut v = vec![0u8; list.len() * uapi::PATH_MAX];
    for (p, slot) in list.iter().zip(v.chunks_exact_mut(uapi::PATH_MAX)) {
        slot[..p.len()].copy_from_slice(p.as_bytes());
    }
    v
}

fn assemble_raw(fd: RawFd, nr: u32, paths: u64) -> (Result<(), Errno>, u32) {
    let mut req = uapi::Assemble {
        nr_members: nr,
        paths,
        ..Default::default()
    };
    let r = ioctl_on(fd, uapi::IOC_ASSEMBLE, &mut req);
    let index = req.check().map(|()| req.index).unwrap_or(u32::MAX);
    (r, index)
}

fn assemble(fd: RawFd, list: &[&str]) -> (Result<(), Errno>, u32) {
    let p = paths(list);
    assemble_raw(fd, list.len() as u32, p.as_ptr() as u64)
}

fn stop(fd: RawFd, index: u32) -> Result<(), Errno> {
    let mut req = uapi::Stop {
        index,
        ..Default::default()
    };
    ioctl_on(fd, uapi::IOC_STOP, &mut req)
}

fn status(fd: RawFd, index: u32) -> Result<(), Errno> {
    let mut req = uapi::Status {
        index,
        ..Default::default()
    };
    ioctl_on(fd, uapi::IOC_STATUS, &mut req)
}

fn volume_req(index: u32, op: u32, id: u32, sectors: u64, name: &[u8]) -> uapi::Volume {
    let mut v = uapi::Volume {
        index,
        op,
        id,
        size_sectors: sectors,
        ..Default::default()
    };
    let n = name.len().min(v.name.len());
    v.name[..n].copy_from_slice(&name[..n]);
    v
}

fn volume(fd: RawFd, index: u32, op: u32, id: u32, sectors: u64, name: &[u8]) -> Result<(), Errno> {
    let mut req = volume_req(index, op, id, sectors, name);
    ioctl_on(fd, uapi::IOC_VOLUME, &mut req)
}

/// A diff case: what it tries, the request, a change to it once its bit
/// map is set, and the answer expected.
type DiffCase = (
    &'static str,
    uapi::Diff,
    fn(&mut uapi::Diff),
    Result<(), Errno>,
);

/// A diff of volumes `id` and `other` into `bits`, with `poke` applied to
/// the request.
fn diff(
    fd: RawFd,
    d: uapi::Diff,
    bits: &mut [u8],
    poke: impl FnOnce(&mut uapi::Diff),
) -> Result<(), Errno> {
    let mut req = uapi::Diff {
        bitmap: bits.as_mut_ptr() as u64,
        ..d
    };
    poke(&mut req);
    ioctl_on(fd, uapi::IOC_DIFF, &mut req)
}

fn volumes(fd: RawFd, index: u32, size: u32, flags: u32) -> Result<(), Errno> {
    let mut req = uapi::Volumes {
        size,
        flags,
        index,
        ..Default::default()
    };
    ioctl_on(fd, uapi::IOC_VOLUMES, &mut req)
}

/// Volume requests that are malformed or name what does not exist.
fn volume_abuse(t: &mut Checker, fd: RawFd, index: u32) {
    const GIB: u64 = 1 << 21;
    let create = uapi::VOLUME_CREATE;
    let ok = volume_req(index, create, 0, GIB, b"ok");
    for (what, bad) in [
        ("volume: wrong size field", uapi::Volume { size: 79, ..ok }),
        ("volume: flags set", uapi::Volume { flags: 1, ..ok }),
        (
            "volume: reserved word set",
            uapi::Volume { reserved: 1, ..ok },
        ),
        (
            "volume: first reserved word set",
            uapi::Volume { reserved0: 1, ..ok },
        ),
        (
            "volume: a divergence map form on create",
            uapi::Volume {
                track: uapi::TRACK_BITMAP,
                ..ok
            },
        ),
    ] {
        let mut bad = bad;
        t.expect(
            what,
            ioctl_on(fd, uapi::IOC_VOLUME, &mut bad),
            Err(Errno::EINVAL),
        );
    }
    t.expect(
        "volume: unknown operation",
        volume(fd, index, 99, 0, GIB, b"ok"),
        Err(Errno::EINVAL),
    );
    for (what, name) in [
        ("empty name", &b""[..]),
        ("name with a slash", &b"a/b"[..]),
        ("name with a space", &b"a b"[..]),
        ("name of 32 characters", &[b'x'; 32][..]),
    ] {
        t.expect(
            &format!("volume: {what}"),
            volume(fd, index, create, 0, GIB, name),
            Err(Errno::EINVAL),
        );
    }
    t.expect(
        "volume: size 0",
        volume(fd, index, create, 0, 0, b"ok"),
        Err(Errno::EINVAL),
    );
    t.expect(
        "volume: size not whole blocks",
        volume(fd, index, create, 0, GIB + 1, b"ok"),
        Err(Errno::EINVAL),
    );
    t.expect(
        "volume: size u64::MAX",
        volume(fd, index, create, 0, !7u64, b"ok"),
        Err(Errno::EINVAL),
    );
    t.expect(
        "volume: create with an id",
        volume(fd, index, create, 7, GIB, b"ok"),
        Err(Errno::EINVAL),
    );
    t.expect(
        "volume: duplicate name",
        volume(fd, index, create, 0, GIB, b"vol0"),
        Err(Errno::EEXIST),
    );
    t.expect(
        "volume: resize a missing id",
        volume(fd, index, uapi::VOLUME_RESIZE, 77, GIB, b""),
        Err(Errno::ENOENT),
    );
    t.expect(
        "volume: delete a missing name",
        volume(fd, index, uapi::VOLUME_DELETE, 0, 0, b"nosuch"),
        Err(Errno::ENOENT),
    );
    t.expect(
        "volume: missing array",
        volume(fd, 40, create, 0, GIB, b"ok"),
        Err(Errno::ENOENT),
    );
    let copy = uapi::VOLUME_COPY;
    t.expect(
        "copy: no source id",
        volume(fd, index, copy, 0, 0, b"c"),
        Err(Errno::EINVAL),
    );
    t.expect(
        "copy: a size given",
        volume(fd, index, copy, 1, GIB, b"c"),
        Err(Errno::EINVAL),
    );
    t.expect(
        "copy: a missing source",
        volume(fd, index, copy, 77, 0, b"c"),
        Err(Errno::ENOENT),
    );
    t.expect(
        "copy: a name in use",
        volume(fd, index, copy, 1, 0, b"vol0"),
        Err(Errno::EEXIST),
    );
    t.expect(
        "copy: a bad name",
        volume(fd, index, copy, 1, 0, b"a/b"),
        Err(Errno::EINVAL),
    );
    let mut req = volume_req(index, copy, 1, 0, b"c");
    req.form = 9;
    t.expect(
        "copy: an unknown metadata form",
        ioctl_on(fd, uapi::IOC_VOLUME, &mut req),
        Err(Errno::EINVAL),
    );
    let mut req = volume_req(index, create, 0, GIB, b"ok");
    req.form = uapi::COPY_FORM_CHANGED;
    t.expect(
        "volume: a metadata form for a create",
        ioctl_on(fd, uapi::IOC_VOLUME, &mut req),
        Err(Errno::EINVAL),
    );
    t.expect("copy: of vol0", volume(fd, index, copy, 1, 0, b"c"), Ok(()));
    let mut bits = vec![0u8; (uapi::DIFF_MAX_BLOCKS / 8) as usize];
    let d = uapi::Diff {
        index,
        id: 1,
        other: 1,
        start: 0,
        nr_blocks: 64,
        ..Default::default()
    };
    let cases: [DiffCase; 10] = [
        ("diff: vol0 with itself", d, |_| {}, Ok(())),
        (
            "diff: no blocks",
            uapi::Diff { nr_blocks: 0, ..d },
            |_| {},
            Err(Errno::EINVAL),
        ),
        (
            "diff: more blocks than one call takes",
            uapi::Diff {
                nr_blocks: uapi::DIFF_MAX_BLOCKS + 1,
                ..d
            },
            |_| {},
            Err(Errno::EINVAL),
        ),
        (
            "diff: blocks past the end",
            uapi::Diff {
                start: u64::MAX - 8,
                ..d
            },
            |_| {},
            Err(Errno::EINVAL),
        ),
        (
            "diff: a missing volume",
            uapi::Diff { other: 999, ..d },
            |_| {},
            Err(Errno::ENOENT),
        ),
        (
            "diff: a missing array",
            uapi::Diff { index: 40, ..d },
            |_| {},
            Err(Errno::ENOENT),
        ),
        (
            "diff: an unknown flag",
            d,
            |r| r.flags = 2,
            Err(Errno::EINVAL),
        ),
        (
            "diff: the answer field set",
            d,
            |r| r.how = 1,
            Err(Errno::EINVAL),
        ),
        (
            "diff: wrong size field",
            d,
            |r| r.size = 8,
            Err(Errno::EINVAL),
        ),
        (
            "diff: a bit map the caller cannot write",
            d,
            |r| r.bitmap = 8,
            Err(Errno::EFAULT),
        ),
    ];
    for (what, req, poke, want) in cases {
        t.expect(what, diff(fd, req, &mut bits, poke), want);
    }
    t.expect(
        "copy: delete it",
        volume(fd, index, uapi::VOLUME_DELETE, 0, 0, b"c"),
        Ok(()),
    );
    t.expect(
        "volumes: wrong size field",
        volumes(fd, index, 16, 0),
        Err(Errno::EINVAL),
    );
    t.expect(
        "volumes: an unknown flag",
        volumes(fd, index, size_of::<uapi::Volumes>() as u32, 2),
        Err(Errno::EINVAL),
    );
    t.expect(
        "volumes: without sharing counts",
        volumes(
            fd,
            index,
            size_of::<uapi::Volumes>() as u32,
            uapi::VOLUMES_NO_SHARING,
        ),
        Ok(()),
    );
    t.expect(
        "volumes: missing array",
        volumes(fd, 40, size_of::<uapi::Volumes>() as u32, 0),
        Err(Errno::ENOENT),
    );
    t.expect(
        "volumes: the array's",
        volumes(fd, index, size_of::<uapi::Volumes>() as u32, 0),
        Ok(()),
    );
    // The table holds 64 volumes; vol0 is one of them.
    let mut made = 0;
    for i in 0..64 {
        if volume(fd, index, create, 0, 8, format!("v{i}").as_bytes()).is_err() {
            break;
        }
        made += 1;
    }
    t.expect(
        "volume: 63 more fit the table",
        if made == 63 {
            Ok(())
        } else {
            Err(Errno::E2BIG)
        },
        Ok(()),
    );
    t.expect(
        "volume: the 65th",
        volume(fd, index, create, 0, 8, b"one-too-many"),
        Err(Errno::ENOSPC),
    );
    t.expect(
        "copy: no room in the table",
        volume(fd, index, uapi::VOLUME_COPY, 1, 0, b"one-too-many"),
        Err(Errno::ENOSPC),
    );
}

/// Issues ASSEMBLE with `req` copied into a read-only page.
fn assemble_read_only(fd: RawFd, req: &uapi::Assemble) -> Result<(), Errno> {
    use nix::sys::mman::mmap_anonymous;
    use nix::sys::mman::mprotect;
    use nix::sys::mman::MapFlags;
    use nix::sys::mman::ProtFlags;
    let len = std::num::NonZeroUsize::new(4096).expect("non-zero");
    // SAFETY: A fresh private anonymous mapping aliases nothing.
    let page = unsafe {
        mmap_anonymous(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_PRIVATE,
        )
    }
    .expect("mmap");
    // SAFETY: The page is 4096 writable bytes, more than the request.
    let req = req.as_bytes();
    unsafe { std::ptr::copy_nonoverlapping(req.as_ptr(), page.as_ptr().cast::<u8>(), req.len()) };
    // SAFETY: The mapping is ours; nothing holds a reference into it.
    unsafe { mprotect(page, 4096, ProtFlags::PROT_READ) }.expect("mprotect");
    ioctl(fd, uapi::IOC_ASSEMBLE, page.as_ptr().cast())
}

/// Zeroes the first and last MiB of `dev`, where superblocks live.
fn wipe(dev: &str) {
    use std::io::Seek;
    use std::os::unix::fs::FileExt;
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .expect("open member");
    let size = f.seek(std::io::SeekFrom::End(0)).expect("size");
    let zeros = vec![0u8; 1 << 20];
    f.write_all_at(&zeros, 0).expect("wipe start");
    f.write_all_at(&zeros, size - (1 << 20)).expect("wipe end");
    f.sync_all().expect("sync");
}

struct Checker {
    failures: u32,
}

impl Checker {
    fn expect(&mut self, what: &str, got: Result<(), Errno>, want: Result<(), Errno>) {
        if got == want {
            println!("ok: {what}: {}", show(got));
        } else {
            println!("FAIL: {what}: got {}, want {}", show(got), show(want));
            self.failures += 1;
        }
    }
}

fn show(r: Result<(), Errno>) -> String {
    match r {
        Ok(()) => "success".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn open_control() -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/{}", uapi::CONTROL_NAME))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        eprintln!("usage: stria-ioctl-test A B C D (arrays A+B and C+D created)");
        std::process::exit(2);
    }
    let (a, b, c, d) = (
        args[0].as_str(),
        args[1].as_str(),
        args[2].as_str(),
        args[3].as_str(),
    );
    let file = open_control().expect("open /dev/stria-control");
    let fd = file.as_raw_fd();
    let mut t = Checker { failures: 0 };

    t.expect("no members", assemble(fd, &[]).0, Err(Errno::EINVAL));
    t.expect("one member", assemble(fd, &[a]).0, Err(Errno::EINVAL));
    let many: Vec<&str> = std::iter::repeat_n(a, 33).collect();
    t.expect("33 members", assemble(fd, &many).0, Err(Errno::EINVAL));
    t.expect(
        "same member twice",
        assemble(fd, &[a, a]).0,
        Err(Errno::EBUSY),
    );
    t.expect(
        "nonexistent path",
        assemble(fd, &[a, "/dev/no-such-disk"]).0,
        Err(Errno::ENOENT),
    );
    std::fs::write("/tmp/plain-file", b"x").expect("create /tmp/plain-file");
    t.expect(
        "regular file",
        assemble(fd, &[a, "/tmp/plain-file"]).0,
        Err(Errno::ENOTBLK),
    );
    t.expect(
        "character device",
        assemble(fd, &[a, "/dev/null"]).0,
        Err(Errno::ENOTBLK),
    );
    t.expect("empty path", assemble(fd, &[a, ""]).0, Err(Errno::EINVAL));
    let mut unterminated = paths(&[a, b]);
    unterminated[uapi::PATH_MAX..].fill(b'x');
    t.expect(
        "unterminated path",
        assemble_raw(fd, 2, unterminated.as_ptr() as u64).0,
        Err(Errno::EINVAL),
    );
    t.expect(
        "paths at a bad address",
        assemble_raw(fd, 2, 16).0,
        Err(Errno::EFAULT),
    );
    t.expect(
        "request at a bad address",
        ioctl(fd, uapi::IOC_ASSEMBLE, 16 as *mut u8),
        Err(Errno::EFAULT),
    );

    let good = paths(&[a, b]);
    let mut req = uapi::Assemble {
        nr_members: 2,
        paths: good.as_ptr() as u64,
        ..Default::default()
    };
    let mut reserved = req;
    reserved.reserved[2] = 1;
    for (what, bad) in [
        ("size field too small", uapi::Assemble { size: 48, ..req }),
        (
            "size field garbage",
            uapi::Assemble {
                size: 0xffff_ffff,
                ..req
            },
        ),
        ("unknown flag", uapi::Assemble { flags: 1, ..req }),
        ("reserved field set", reserved),
    ] {
        let mut bad = bad;
        t.expect(
            what,
            ioctl_on(fd, uapi::IOC_ASSEMBLE, &mut bad),
            Err(Errno::EINVAL),
        );
    }
    // The same request number with another structure size is another ioctl.
    let wrong_size = (uapi::IOC_ASSEMBLE & !(0x3fff << 16)) | (48 << 16);
    t.expect(
        "request encoding a wrong size",
        ioctl_on(fd, wrong_size, &mut req),
        Err(Errno::ENOTTY),
    );
    let unknown = (uapi::IOC_STOP & !0xff) | 0x7f;
    t.expect(
        "unknown request",
        ioctl_on(fd, unknown, &mut req),
        Err(Errno::ENOTTY),
    );

    t.expect("stop a missing array", stop(fd, 5), Err(Errno::ENOENT));
    t.expect(
        "stop array 1000000",
        stop(fd, 1_000_000),
        Err(Errno::ENOENT),
    );
    t.expect(
        "status of a missing array",
        status(fd, 7),
        Err(Errno::ENOENT),
    );
    t.expect(
        "status of array u32::MAX",
        status(fd, u32::MAX),
        Err(Errno::ENOENT),
    );

    // A request the kernel can read but not answer into: refused with
    // EFAULT before anything is built, and nothing is left behind.
    t.expect(
        "request in read-only memory",
        assemble_read_only(fd, &req),
        Err(Errno::EFAULT),
    );
    t.expect("no array left behind", status(fd, 0), Err(Errno::ENOENT));

    // A well-formed request still works after all that, and its members
    // cannot be claimed again while it runs.
    let r = ioctl_on(fd, uapi::IOC_ASSEMBLE, &mut req);
    t.expect("valid assemble", r, Ok(()));
    let index = req.check().map(|()| req.index).unwrap_or(u32::MAX);
    t.expect("status of the new array", status(fd, index), Ok(()));
    volume_abuse(&mut t, fd, index);
    t.expect(
        "member in use by another array",
        assemble(fd, &[c, b]).0,
        Err(Errno::EBUSY),
    );
    t.expect("stop the new array", stop(fd, index), Ok(()));
    t.expect("stop it twice", stop(fd, index), Err(Errno::ENOENT));
    let (r, index) = assemble(fd, &[b, a]);
    t.expect("members are free again, in any order", r, Ok(()));
    t.expect("stop again", stop(fd, index), Ok(()));

    // What the superblocks say must hold together.
    t.expect(
        "members of two arrays",
        assemble(fd, &[a, c]).0,
        Err(Errno::EINVAL),
    );
    t.expect(
        "a member too many",
        assemble(fd, &[a, b, c]).0,
        Err(Errno::EINVAL),
    );
    wipe(d);
    t.expect(
        "a member without a superblock",
        assemble(fd, &[c, d]).0,
        Err(Errno::EINVAL),
    );

    // Without CAP_SYS_ADMIN: an unprivileged user cannot open the device,
    // and a descriptor opened by root is useless once privileges are gone.
    // SAFETY: The program is single threaded, so the child may run anything.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let nobody = Uid::from_raw(65534);
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534)).expect("setgid");
            nix::unistd::setuid(nobody).expect("setuid");
            let mut t = Checker { failures: 0 };
            let open = open_control()
                .map(|_| ())
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)));
            t.expect("open as nobody", open, Err(Errno::EACCES));
            t.expect(
                "assemble as nobody",
                assemble(fd, &[a, b]).0,
                Err(Errno::EPERM),
            );
            t.expect("status as nobody", status(fd, 0), Err(Errno::EPERM));
            t.expect("stop as nobody", stop(fd, 0), Err(Errno::EPERM));
            t.expect(
                "copy as nobody",
                volume(fd, 0, uapi::VOLUME_COPY, 1, 0, b"c"),
                Err(Errno::EPERM),
            );
            std::process::exit(if t.failures == 0 { 0 } else { 1 });
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let ok = matches!(
                nix::sys::wait::waitpid(child, None),
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
            );
            t.expect(
                "unprivileged checks",
                if ok { Ok(()) } else { Err(Errno::EIO) },
                Ok(()),
            );
        }
        Err(e) => t.expect("fork", Err(e), Ok(())),
    }

    println!("{} mismatches", t.failures);
    std::process::exit(if t.failures == 0 { 0 } else { 1 });
}
