// SPDX-License-Identifier: GPL-2.0

//! libblkid's low-level probe, for the signatures of everything util-linux
//! knows (filesystems, RAID and crypto superblocks, partition tables), and
//! for erasing them the way `wipefs -a` does.

use nix::errno::Errno;
use std::ffi::c_char;
use std::ffi::c_int;
use std::ffi::CStr;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::marker::PhantomPinned;
use std::os::fd::AsRawFd;
use std::os::fd::BorrowedFd;
use std::ptr;
use std::ptr::NonNull;

/// `struct blkid_struct_probe`, only ever behind a pointer.
#[repr(C)]
struct RawProbe {
    _opaque: [u8; 0],
    // Neither Send, Sync nor Unpin: libblkid owns it and is not thread-safe.
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// The flags as <blkid/blkid.h> defines them.
/// Report the superblock's type as `TYPE`.
const BLKID_SUBLKS_TYPE: c_int = 1 << 5;
/// Record where the magic is, which `blkid_do_wipe` erases.
const BLKID_SUBLKS_MAGIC: c_int = 1 << 9;
/// Report superblocks whose checksum is wrong, too.
const BLKID_SUBLKS_BADCSUM: c_int = 1 << 10;
/// Record where a partition table's magic is, for `blkid_do_wipe`.
const BLKID_PARTS_MAGIC: c_int = 1 << 3;

/// More erasures than any real device needs (md and GPT have a few copies
/// each).
const MAX_WIPES: usize = 256;

#[link(name = "blkid")]
extern "C" {
    fn blkid_new_probe() -> *mut RawProbe;
    fn blkid_free_probe(pr: *mut RawProbe);
    fn blkid_probe_set_device(pr: *mut RawProbe, fd: c_int, off: i64, size: i64) -> c_int;
    fn blkid_probe_enable_superblocks(pr: *mut RawProbe, enable: c_int) -> c_int;
    fn blkid_probe_set_superblocks_flags(pr: *mut RawProbe, flags: c_int) -> c_int;
    fn blkid_probe_enable_partitions(pr: *mut RawProbe, enable: c_int) -> c_int;
    fn blkid_probe_set_partitions_flags(pr: *mut RawProbe, flags: c_int) -> c_int;
    fn blkid_do_probe(pr: *mut RawProbe) -> c_int;
    fn blkid_probe_lookup_value(
        pr: *mut RawProbe,
        name: *const c_char,
        data: *mut *const c_char,
        len: *mut usize,
    ) -> c_int;
    fn blkid_do_wipe(pr: *mut RawProbe, dryrun: c_int) -> c_int;
}

/// Turns a libblkid return code into a result.  Depending on the call and
/// the library's version a failure is `-errno` or `-1` with `errno` set, so
/// `errno` must be cleared before the call.
fn check(rc: c_int) -> io::Result<c_int> {
    if rc >= 0 {
        return Ok(rc);
    }
    if rc < -1 {
        return Err(io::Error::from_raw_os_error(-rc));
    }
    match Errno::last() {
        // A failure without a reason (a short read, a bad structure).
        Errno::UnknownErrno => Err(io::Error::from_raw_os_error(Errno::EIO as i32)),
        e => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

/// What a signature belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A filesystem, RAID member, crypto container or the like.
    Superblock,
    /// A partition table.
    PartitionTable,
}

/// One signature libblkid found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// libblkid's name for it (`TYPE` or `PTTYPE`): "ext4", "crypto_LUKS",
    /// "linux_raid_member", "gpt", ...
    pub name: String,
    /// Superblock or partition table.
    pub kind: Kind,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Superblock => write!(f, "{}", self.name),
            Kind::PartitionTable => write!(f, "{} partition table", self.name),
        }
    }
}

/// A libblkid probe over a descriptor it borrows, freed on drop.
///
/// The caller's descriptor is used rather than a path so that the probe
/// sees the device the caller opened (exclusively, for writing) and can
/// erase through it: libblkid opens a path read-only.
pub struct Probe<'fd> {
    raw: NonNull<RawProbe>,
    _fd: PhantomData<BorrowedFd<'fd>>,
}

impl<'fd> Probe<'fd> {
    /// A probe for superblocks and partition tables on `fd`, recording
    /// where each magic lies so it can be wiped.
    pub fn new(fd: BorrowedFd<'fd>) -> io::Result<Self> {
        // SAFETY: No arguments; a null return is handled below.
        let raw = NonNull::new(unsafe { blkid_new_probe() })
            .ok_or_else(|| io::Error::from_raw_os_error(Errno::ENOMEM as i32))?;
        // Owned from here on, so an early return below frees it.
        let probe = Self {
            raw,
            _fd: PhantomData,
        };
        let pr = probe.raw.as_ptr();
        let sb_flags = BLKID_SUBLKS_TYPE | BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_BADCSUM;
        Errno::clear();
        // SAFETY: `pr` is a live probe; the descriptor stays open for 'fd,
        // which the probe cannot outlive, and offset 0 with size 0 means
        // the whole device.
        check(unsafe { blkid_probe_set_device(pr, fd.as_raw_fd(), 0, 0) })?;
        // SAFETY: `pr` is a live probe with a device set.
        unsafe {
            check(blkid_probe_enable_superblocks(pr, 1))?;
            check(blkid_probe_set_superblocks_flags(pr, sb_flags))?;
            check(blkid_probe_enable_partitions(pr, 1))?;
            check(blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC))?;
        }
        Ok(probe)
    }

    /// The next signature, or `None` once every prober has had its turn.
    fn next(&mut self) -> io::Result<Option<Signature>> {
        Errno::clear();
        // SAFETY: `raw` is a live probe with a device set.
        if check(unsafe { blkid_do_probe(self.raw.as_ptr()) })? == 1 {
            return Ok(None);
        }
        // Each step fills in the values of one chain only.
        if let Some(name) = self.value(c"TYPE") {
            return Ok(Some(Signature {
                name,
                kind: Kind::Superblock,
            }));
        }
        if let Some(name) = self.value(c"PTTYPE") {
            return Ok(Some(Signature {
                name,
                kind: Kind::PartitionTable,
            }));
        }
        // A prober that matched without naming its type (none do today):
        // still something on the device.
        Ok(Some(Signature {
            name: "unknown signature".to_string(),
            kind: Kind::Superblock,
        }))
    }

    /// The value `name` of the last step, copied out of the probe.
    fn value(&self, name: &CStr) -> Option<String> {
        let mut data: *const c_char = ptr::null();
        // SAFETY: `raw` is live, `name` is NUL-terminated and `data` is
        // written only on success; the length is not wanted.
        let rc = unsafe {
            blkid_probe_lookup_value(self.raw.as_ptr(), name.as_ptr(), &mut data, ptr::null_mut())
        };
        if rc != 0 || data.is_null() {
            return None;
        }
        // SAFETY: On success `data` is a NUL-terminated string the probe
        // owns until its next step; it is copied before then.
        let s = unsafe { CStr::from_ptr(data) };
        Some(s.to_string_lossy().into_owned())
    }

    /// Every signature on the device, in the order libblkid finds them.
    pub fn signatures(mut self) -> io::Result<Vec<Signature>> {
        let mut found = Vec::new();
        while let Some(sig) = self.next()? {
            found.push(sig);
        }
        Ok(found)
    }

    /// Erases the magic of every signature, as `wipefs -a` does, and says
    /// what it erased.  libblkid steps back after each erasure, so the same
    /// prober looks again and finds what hid behind (a GPT's backup header
    /// after its primary, the protective MBR after both).
    pub fn wipe_all(mut self) -> io::Result<Vec<Signature>> {
        let mut wiped = Vec::new();
        while let Some(sig) = self.next()? {
            // A write that does not stick (a device that drops writes) would
            // find the same magic forever.
            if wiped.len() == MAX_WIPES {
                return Err(io::Error::from_raw_os_error(Errno::EIO as i32));
            }
            Errno::clear();
            // SAFETY: `raw` is live and its last step found a signature.
            check(unsafe { blkid_do_wipe(self.raw.as_ptr(), 0) })?;
            wiped.push(sig);
        }
        Ok(wiped)
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` came from blkid_new_probe and is freed only here;
        // the descriptor is the caller's, which libblkid does not close.
        unsafe { blkid_free_probe(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    /// A sparse scratch file, removed on drop.
    struct Scratch {
        path: PathBuf,
        file: File,
    }

    impl Scratch {
        fn new(tag: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("stria-blkid-{tag}-{}.img", std::process::id()));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            file.set_len(8 << 20).unwrap();
            Self { path, file }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            std::fs::remove_file(&self.path).ok();
        }
    }

    /// A DOS label with one Linux partition, by hand: enough for libblkid.
    fn write_mbr(f: &File) {
        let mut entry = [0u8; 16];
        entry[4] = 0x83;
        entry[8..12].copy_from_slice(&2048u32.to_le_bytes());
        entry[12..16].copy_from_slice(&4096u32.to_le_bytes());
        f.write_all_at(&entry, 446).unwrap();
        f.write_all_at(&[0x55, 0xaa], 510).unwrap();
    }

    fn probe(s: &Scratch) -> Probe<'_> {
        Probe::new(s.file.as_fd()).unwrap()
    }

    #[test]
    fn blank_file_has_no_signature() {
        let s = Scratch::new("blank");
        assert_eq!(probe(&s).signatures().unwrap(), vec![]);
        assert_eq!(probe(&s).wipe_all().unwrap(), vec![]);
    }

    #[test]
    fn finds_and_wipes_a_dos_label() {
        let s = Scratch::new("dos");
        write_mbr(&s.file);
        let dos = Signature {
            name: "dos".to_string(),
            kind: Kind::PartitionTable,
        };
        assert_eq!(probe(&s).signatures().unwrap(), vec![dos.clone()]);
        assert_eq!(dos.to_string(), "dos partition table");
        assert_eq!(probe(&s).wipe_all().unwrap(), vec![dos]);
        assert_eq!(probe(&s).signatures().unwrap(), vec![]);
        let mut magic = [0u8; 2];
        s.file.read_exact_at(&mut magic, 510).unwrap();
        assert_eq!(magic, [0, 0]);
    }

    #[test]
    fn wiping_through_a_read_only_descriptor_fails_with_its_errno() {
        let s = Scratch::new("ro");
        write_mbr(&s.file);
        let ro = File::open(&s.path).unwrap();
        let err = Probe::new(ro.as_fd()).unwrap().wipe_all().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(Errno::EBADF as i32));
    }

    #[test]
    fn return_codes_map_to_errno() {
        assert_eq!(check(0).unwrap(), 0);
        assert_eq!(check(1).unwrap(), 1);
        let e = check(-(Errno::EINVAL as i32)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::EINVAL as i32));
        Errno::clear();
        assert_eq!(
            check(-1).unwrap_err().raw_os_error(),
            Some(Errno::EIO as i32)
        );
        Errno::set_raw(Errno::ENOSPC as i32);
        let e = check(-1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::ENOSPC as i32));
    }
}
