// SPDX-License-Identifier: GPL-2.0

//! A member device (or an image file) opened for the format commands.

use crate::blkid;
use crate::error::Failure;
use crate::probe;
use crate::probe::ReadAt;
use nix::errno::Errno;
use std::fs::File;
use std::fs::OpenOptions;
use std::io::Seek;
use std::io::SeekFrom;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::OpenOptionsExt;
use stria_core::error::FormatError;
use stria_core::superblock;
use stria_core::superblock::Superblock;
use stria_core::superblock::SB_BYTES;

// BLKRRPART from <linux/fs.h>.
nix::ioctl_none!(blk_reread_partitions, 0x12, 95);

/// One superblock copy, decoded or refused.
pub type CopyResult = Result<Superblock, FormatError>;

/// An open member.
pub struct Member {
    /// The path it was opened by.
    pub path: String,
    file: File,
    size: u64,
    is_blk: bool,
}

fn io_failure(ctx: &str, e: &std::io::Error) -> Failure {
    Failure::errno(
        ctx.to_string(),
        Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    )
}

impl Member {
    /// Opens `path`, a block device or an image file; for writing, a block
    /// device is opened exclusively so a mounted or claimed one is refused.
    pub fn open(path: &str, write: bool) -> Result<Self, Failure> {
        let meta = std::fs::metadata(path).map_err(|e| io_failure(path, &e))?;
        let is_blk = meta.file_type().is_block_device();
        if !is_blk && !meta.is_file() {
            return Err(Failure::errno(path, Errno::ENOTBLK));
        }
        let mut opts = OpenOptions::new();
        opts.read(true).write(write);
        if write && is_blk {
            opts.custom_flags(nix::libc::O_EXCL);
        }
        let mut file = opts.open(path).map_err(|e| io_failure(path, &e))?;
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| io_failure(path, &e))?;
        Ok(Self {
            path: path.to_string(),
            file,
            size,
            is_blk,
        })
    }

    /// Size in 4 KiB blocks.
    pub fn blocks(&self) -> u64 {
        self.size / 4096
    }

    /// Writes `buf` at block `block`.
    pub fn write_block(&self, block: u64, buf: &[u8]) -> Result<(), Failure> {
        self.file
            .write_all_at(buf, block * 4096)
            .map_err(|e| io_failure(&self.path, &e))
    }

    /// Reads `len` bytes at block `block`.
    pub fn read_block(&self, block: u64, len: usize) -> Result<Vec<u8>, Failure> {
        self.read_at(block * 4096, len)
            .map_err(|e| io_failure(&self.path, &e))
    }

    /// The open descriptor, for libblkid to probe and wipe through.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// What the device already holds (see [`probe::signatures`]).
    pub fn signatures(&self) -> Result<Vec<String>, Failure> {
        probe::signatures(self, self.fd())
            .map_err(|e| io_failure(&format!("probe {}", self.path), &e))
    }

    /// Erases the magic of every signature libblkid finds, as `wipefs -a`
    /// does.  A block device whose partition table went then rereads it,
    /// so that no stale partition stays around to be written over the
    /// array's data.
    pub fn wipe_signatures(&self) -> Result<(), Failure> {
        let wiped = blkid::Probe::new(self.fd())
            .and_then(blkid::Probe::wipe_all)
            .map_err(|e| io_failure(&format!("wipe {}", self.path), &e))?;
        let table = wiped.iter().any(|s| s.kind == blkid::Kind::PartitionTable);
        if !(self.is_blk && table) {
            return Ok(());
        }
        // SAFETY: BLKRRPART takes no argument; the descriptor is open.
        match unsafe { blk_reread_partitions(self.file.as_raw_fd()) } {
            // A partition, or a disk that never has partitions: nothing to
            // reread.
            Ok(_) | Err(Errno::EINVAL) => Ok(()),
            Err(e) => Err(Failure::errno(
                format!("reread partitions {}", self.path),
                e,
            )),
        }
    }

    /// Tells the kernel the bytes just read will not be needed again, so a
    /// whole-device scan does not push everything else out of memory.
    pub fn drop_cache(&self, block: u64, len: usize) {
        let _ = nix::fcntl::posix_fadvise(
            self.file.as_raw_fd(),
            (block * 4096) as i64,
            len as i64,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }

    /// Both superblock copies, each decoded or the reason it is not valid.
    pub fn superblocks(&self) -> Result<(CopyResult, CopyResult), Failure> {
        let primary = Superblock::decode(&self.read_block(superblock::SB_PRIMARY_BLOCK, SB_BYTES)?);
        let backup = match superblock::locations(self.blocks()) {
            Ok(loc) => Superblock::decode(&self.read_block(loc.backup_block, SB_BYTES)?),
            Err(e) => Err(e),
        };
        Ok((primary, backup))
    }

    /// Makes what was written durable.
    pub fn sync(&self) -> Result<(), Failure> {
        self.file.sync_all().map_err(|e| io_failure(&self.path, &e))
    }
}

impl ReadAt for Member {
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let avail = self.size.saturating_sub(offset).min(len as u64) as usize;
        let mut buf = vec![0u8; avail];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    fn size(&self) -> u64 {
        self.size
    }
}
