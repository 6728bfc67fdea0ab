// SPDX-License-Identifier: GPL-2.0

//! Writes crafted metadata onto stria members for tests: a field of a
//! superblock (both copies) or of a stripe header changed to any value, and
//! the checksum made right again, so that the driver sees a structure that
//! passes its checksum but says what no stria ever wrote.
//!
//! Usage:
//!   `stria-craft sb DEV OFFSET WIDTH VALUE`
//!   `stria-craft header DEV BLOCK OFFSET WIDTH VALUE`
//!
//! OFFSET is a byte offset in the superblock or header block, WIDTH 1, 2,
//! 4 or 8 bytes (little-endian), VALUE decimal or 0x hexadecimal. Prints
//! what it changed; exits non-zero on any error.

use std::fs::File;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::process::ExitCode;
use stria_core::crc;
use stria_core::header;
use stria_core::superblock;

/// Bytes per block.
const BLOCK: u64 = 4096;

fn number(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s}: {e}"))
}

/// Size of `dev` in bytes.
fn size_of(dev: &File) -> Result<u64, String> {
    use std::io::Seek;
    let mut f = dev;
    f.seek(std::io::SeekFrom::End(0))
        .map_err(|e| format!("size: {e}"))
}

/// Changes `width` bytes at `offset` of the `len` bytes at byte `at` of
/// `dev` to `value`, then recomputes the CRC32C kept at `crc_off`.
fn patch(
    dev: &File,
    at: u64,
    len: usize,
    crc_off: usize,
    offset: usize,
    width: usize,
    value: u64,
) -> Result<u64, String> {
    if ![1, 2, 4, 8].contains(&width) {
        return Err(format!("width {width}: must be 1, 2, 4 or 8"));
    }
    if width < 8 && value >> (8 * width) != 0 {
        return Err(format!("value {value:#x} does not fit {width} bytes"));
    }
    let end = offset
        .checked_add(width)
        .filter(|e| *e <= len)
        .ok_or(format!("offset {offset} + {width} is past {len} bytes"))?;
    let mut buf = vec![0u8; len];
    dev.read_exact_at(&mut buf, at)
        .map_err(|e| format!("read at byte {at}: {e}"))?;
    let old = buf[offset..end]
        .iter()
        .rev()
        .fold(0u64, |a, b| a << 8 | u64::from(*b));
    buf[offset..end].copy_from_slice(&value.to_le_bytes()[..width]);
    let sum = crc::crc32c_skip_field(&buf, crc_off).ok_or("structure too small")?;
    buf[crc_off..crc_off + 4].copy_from_slice(&sum.to_le_bytes());
    dev.write_all_at(&buf, at)
        .map_err(|e| format!("write at byte {at}: {e}"))?;
    dev.sync_all().map_err(|e| format!("sync: {e}"))?;
    Ok(old)
}

fn run(args: &[String]) -> Result<(), String> {
    let usage =
        "usage: stria-craft sb DEV OFFSET WIDTH VALUE | header DEV BLOCK OFFSET WIDTH VALUE";
    let open = |path: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("{path}: {e}"))
    };
    match args {
        [what, dev, offset, width, value] if what == "sb" => {
            let f = open(dev)?;
            let (offset, width, value) = (number(offset)?, number(width)?, number(value)?);
            let loc =
                superblock::locations(size_of(&f)? / BLOCK).map_err(|e| format!("{dev}: {e}"))?;
            for (name, block) in [("primary", loc.primary_block), ("backup", loc.backup_block)] {
                let old = patch(
                    &f,
                    block * BLOCK,
                    superblock::SB_BYTES,
                    superblock::off::CRC,
                    offset as usize,
                    width as usize,
                    value,
                )?;
                println!("{dev}: {name} superblock byte {offset}: {old:#x} -> {value:#x}");
            }
            Ok(())
        }
        [what, dev, block, offset, width, value] if what == "header" => {
            let f = open(dev)?;
            let (block, offset) = (number(block)?, number(offset)?);
            let (width, value) = (number(width)?, number(value)?);
            let at = block.checked_mul(BLOCK).ok_or("block out of range")?;
            let old = patch(
                &f,
                at,
                header::HEADER_BYTES,
                header::off::CRC,
                offset as usize,
                width as usize,
                value,
            )?;
            println!("{dev}: header at block {block} byte {offset}: {old:#x} -> {value:#x}");
            Ok(())
        }
        _ => Err(usage.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stria-craft: {e}");
            ExitCode::FAILURE
        }
    }
}
