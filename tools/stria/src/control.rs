// SPDX-License-Identifier: GPL-2.0

//! The control device and its ioctls.

use crate::error::Failure;
use crate::uapi;
use nix::errno::Errno;
use std::fs::File;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;

nix::ioctl_readwrite_bad!(ioc_assemble, uapi::IOC_ASSEMBLE, uapi::Assemble);
nix::ioctl_readwrite_bad!(ioc_stop, uapi::IOC_STOP, uapi::Stop);
nix::ioctl_readwrite_bad!(ioc_status, uapi::IOC_STATUS, uapi::Status);
nix::ioctl_readwrite_bad!(ioc_volume, uapi::IOC_VOLUME, uapi::Volume);
nix::ioctl_readwrite_bad!(ioc_volumes, uapi::IOC_VOLUMES, uapi::Volumes);
nix::ioctl_readwrite_bad!(ioc_gc, uapi::IOC_GC, uapi::Gc);
nix::ioctl_readwrite_bad!(ioc_diff, uapi::IOC_DIFF, uapi::Diff);

/// Path of the control device.
pub fn control_path() -> String {
    format!("/dev/{}", uapi::CONTROL_NAME)
}

/// An open control device.
pub struct Control {
    file: File,
}

/// The array number named by `/dev/striaN`, `striaN` or `N`.
pub fn parse_volume(v: &str) -> Result<u32, Failure> {
    let name = v.strip_prefix("/dev/").unwrap_or(v);
    let digits = name.strip_prefix("stria").unwrap_or(name);
    digits
        .parse::<u32>()
        .ok()
        .filter(|&n| n < uapi::MAX_ARRAYS)
        .ok_or_else(|| Failure::msg(format!("{v}: not a stria volume (expected /dev/striaN)")))
}

/// The `/dev` name of a block device number, or `major:minor`.
pub fn device_name(major: u32, minor: u32) -> String {
    let link = format!("/sys/dev/block/{major}:{minor}");
    std::fs::read_link(&link)
        .ok()
        .and_then(|p| {
            p.file_name()
                .map(|n| format!("/dev/{}", n.to_string_lossy()))
        })
        .unwrap_or_else(|| format!("{major}:{minor}"))
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

impl Control {
    /// Opens the control device.
    pub fn open() -> Result<Self, Failure> {
        let path = control_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| {
                let errno = errno_of(&e);
                let hint = if errno == Errno::ENOENT {
                    " (is the stria module loaded?)"
                } else {
                    ""
                };
                Failure::errno(format!("{path}{hint}"), errno)
            })?;
        Ok(Self { file })
    }

    /// Assembles `members`, which must be block devices; returns the number.
    pub fn assemble(&self, members: &[String]) -> Result<u32, Failure> {
        if members.len() > uapi::MAX_MEMBERS as usize || members.len() < uapi::MIN_MEMBERS as usize
        {
            return Err(Failure::msg(format!(
                "assemble: {} members given, {} to {} allowed",
                members.len(),
                uapi::MIN_MEMBERS,
                uapi::MAX_MEMBERS
            )));
        }
        let mut slots = vec![0u8; members.len() * uapi::PATH_MAX];
        for (m, slot) in members.iter().zip(slots.chunks_exact_mut(uapi::PATH_MAX)) {
            let meta = std::fs::metadata(m).map_err(|e| Failure::errno(m.clone(), errno_of(&e)))?;
            if !meta.file_type().is_block_device() {
                return Err(Failure::errno(m.clone(), Errno::ENOTBLK));
            }
            let bytes = m.as_bytes();
            if bytes.len() >= uapi::PATH_MAX || bytes.contains(&0) {
                return Err(Failure::msg(format!("{m}: path too long")));
            }
            slot[..bytes.len()].copy_from_slice(bytes);
        }
        let mut req = uapi::Assemble {
            nr_members: members.len() as u32,
            paths: slots.as_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: `req` is a `struct stria_assemble` and `slots` outlives the
        // call.
        unsafe { ioc_assemble(self.file.as_raw_fd(), &mut req) }
            .map_err(|e| Failure::errno(format!("assemble {}", members.join(" ")), e))?;
        req.check()
            .map_err(|_| Failure::msg("assemble: bad answer from the kernel"))?;
        Ok(req.index)
    }

    /// Stops array `index`.
    pub fn stop(&self, index: u32) -> Result<(), Failure> {
        let mut req = uapi::Stop {
            index,
            ..Default::default()
        };
        // SAFETY: `req` is a `struct stria_stop`.
        unsafe { ioc_stop(self.file.as_raw_fd(), &mut req) }
            .map_err(|e| Failure::errno(format!("stop /dev/stria{index}"), e))?;
        Ok(())
    }

    /// The status of array `index`.
    pub fn status(&self, index: u32) -> Result<uapi::Status, Failure> {
        self.try_status(index)?
            .ok_or_else(|| Failure::errno(format!("/dev/stria{index}"), Errno::ENOENT))
    }

    fn try_status(&self, index: u32) -> Result<Option<uapi::Status>, Failure> {
        let mut st = uapi::Status {
            index,
            ..Default::default()
        };
        // SAFETY: `st` is a `struct stria_status`.
        match unsafe { ioc_status(self.file.as_raw_fd(), &mut st) } {
            Ok(_) => {}
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Failure::errno(format!("status /dev/stria{index}"), e)),
        }
        st.check()
            .map(|()| Some(st))
            .map_err(|_| Failure::msg("status: bad answer from the kernel"))
    }

    /// Creates, resizes or deletes a volume as `req` says; returns the
    /// kernel's answer (`id` is the new volume's for a create).  A refusal
    /// is reported as `what` and the errno.
    pub fn volume(&self, req: &uapi::Volume, what: &str) -> Result<uapi::Volume, Failure> {
        let mut out = *req;
        // SAFETY: `out` is a `struct stria_volume`.
        unsafe { ioc_volume(self.file.as_raw_fd(), &mut out) }
            .map_err(|e| Failure::errno(what, e))?;
        out.check()
            .map(|()| out)
            .map_err(|_| Failure::msg(format!("{what}: bad answer from the kernel")))
    }

    /// The volumes of array `index`, or `None` if there is no such array,
    /// with the blocks each shares with the others counted.
    pub fn volumes(&self, index: u32) -> Result<Option<uapi::Volumes>, Failure> {
        self.query_volumes(index, 0)
    }

    /// [`Self::volumes`] without counting shared blocks (that is a pass
    /// over the maps): to find a volume.
    pub fn volume_ids(&self, index: u32) -> Result<Option<uapi::Volumes>, Failure> {
        self.query_volumes(index, uapi::VOLUMES_NO_SHARING)
    }

    fn query_volumes(&self, index: u32, flags: u32) -> Result<Option<uapi::Volumes>, Failure> {
        let mut vs = uapi::Volumes {
            index,
            flags,
            ..Default::default()
        };
        // SAFETY: `vs` is a `struct stria_volumes`.
        match unsafe { ioc_volumes(self.file.as_raw_fd(), &mut vs) } {
            Ok(_) => {}
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Failure::errno(format!("volumes of stria{index}"), e)),
        }
        vs.check()
            .map(|()| Some(vs))
            .map_err(|_| Failure::msg("volumes: bad answer from the kernel"))
    }

    /// Runs free-space collection as `req` says; returns the kernel's
    /// answer.
    pub fn gc(&self, req: &uapi::Gc) -> Result<uapi::Gc, Failure> {
        let mut out = *req;
        // SAFETY: `out` is a `struct stria_gc`.
        unsafe { ioc_gc(self.file.as_raw_fd(), &mut out) }
            .map_err(|e| Failure::errno(format!("gc /dev/stria{}", req.index), e))?;
        out.check()
            .map(|()| out)
            .map_err(|_| Failure::msg("gc: bad answer from the kernel"))
    }

    /// Fills `bits` with where the volumes `req` names differ over
    /// `req.nr_blocks` blocks from `req.start` (one bit each); returns
    /// the kernel's answer: how many do, and how it found them. A refusal
    /// is reported as `what` and the errno.
    pub fn diff(
        &self,
        req: &uapi::Diff,
        bits: &mut [u8],
        what: &str,
    ) -> Result<uapi::Diff, Failure> {
        if (bits.len() as u64) < req.nr_blocks.div_ceil(8) {
            return Err(Failure::msg(format!("{what}: bit map too short")));
        }
        let mut out = uapi::Diff {
            bitmap: bits.as_mut_ptr() as u64,
            ..*req
        };
        // SAFETY: `out` is a `struct stria_diff` whose bit map is `bits`,
        // long enough for `nr_blocks` bits, which the kernel writes.
        unsafe { ioc_diff(self.file.as_raw_fd(), &mut out) }
            .map_err(|e| Failure::errno(what, e))?;
        out.check()
            .map(|()| out)
            .map_err(|_| Failure::msg(format!("{what}: bad answer from the kernel")))
    }

    /// The status of every array.
    pub fn all(&self) -> Result<Vec<uapi::Status>, Failure> {
        let mut out = Vec::new();
        for i in 0..uapi::MAX_ARRAYS {
            if let Some(s) = self.try_status(i)? {
                out.push(s);
            }
        }
        Ok(out)
    }
}
