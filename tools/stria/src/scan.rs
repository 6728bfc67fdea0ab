// SPDX-License-Identifier: GPL-2.0

//! Finding arrays by their superblocks, for `assemble --scan`.

use crate::member::Member;
use std::collections::BTreeMap;
use stria_core::superblock;
use stria_core::superblock::Superblock;

/// A member found on a block device.
pub struct Found {
    /// The device.
    pub path: String,
    /// Its index in the array.
    pub index: u8,
}

/// An array whose members were found.
pub struct Array {
    /// The array's UUID.
    pub uuid: [u8; 16],
    /// The array's name.
    pub name: String,
    /// Members the superblocks say it has.
    pub member_count: u8,
    /// The members found, by index.
    pub members: Vec<Found>,
}

/// The newest valid superblock of `path`, if it is a stria member.
fn superblock_of(path: &str) -> Option<Superblock> {
    let (primary, backup) = Member::open(path, false).ok()?.superblocks().ok()?;
    superblock::pick_newest(
        primary.as_ref().map_err(|e| *e),
        backup.as_ref().map_err(|e| *e),
    )
    .ok()
    .map(|(_, sb)| *sb)
}

/// Every array with at least one member among the system's block devices.
pub fn scan() -> Vec<Array> {
    let mut arrays: BTreeMap<[u8; 16], Array> = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/block") else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("stria") && !n.starts_with("ram"))
        .collect();
    names.sort();
    for name in names {
        let path = format!("/dev/{name}");
        let Some(sb) = superblock_of(&path) else {
            continue;
        };
        let a = arrays.entry(sb.array_uuid.0).or_insert_with(|| Array {
            uuid: sb.array_uuid.0,
            name: superblock::name_str(&sb.array_name).to_string(),
            member_count: sb.member_count,
            members: Vec::new(),
        });
        if !a.members.iter().any(|m| m.index == sb.member_index) {
            a.members.push(Found {
                path,
                index: sb.member_index,
            });
        }
    }
    let mut out: Vec<Array> = arrays.into_values().collect();
    for a in &mut out {
        a.members.sort_by_key(|m| m.index);
    }
    out
}
