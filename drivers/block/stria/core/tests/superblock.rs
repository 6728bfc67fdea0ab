// SPDX-License-Identifier: GPL-2.0

//! Superblock codec, copy selection and member layout: every field and
//! every error.

mod common;

use common::*;
use stria_core::crc;
use stria_core::error::FormatError;
use stria_core::error::FormatError::*;
use stria_core::geometry::RaidType;
use stria_core::header::StripeLocation;
use stria_core::le;
use stria_core::superblock::check_name;
use stria_core::superblock::feature;
use stria_core::superblock::locations;
use stria_core::superblock::name_str;
use stria_core::superblock::off;
use stria_core::superblock::pick_newest;
use stria_core::superblock::set_name;
use stria_core::superblock::CopyMeta;
use stria_core::superblock::Locations;
use stria_core::superblock::MemberEntry;
use stria_core::superblock::SbCopy;
use stria_core::superblock::StripeGroup;
use stria_core::superblock::Superblock;
use stria_core::superblock::MAX_MEMBER_BLOCKS;
use stria_core::superblock::MAX_VOLUME_BLOCKS;
use stria_core::superblock::SB_BLOCKS;
use stria_core::superblock::SB_BYTES;
use stria_core::uuid::Uuid;

fn member(i: usize) -> usize {
    off::MEMBERS + i * off::MEMBER_SIZE
}

fn group(i: usize) -> usize {
    off::GROUPS + i * off::GROUP_SIZE
}

fn volume(i: usize) -> usize {
    off::VOLUMES + i * off::VOLUME_SIZE
}

fn patched(want: FormatError, patch: impl FnOnce(&mut [u8])) {
    let mut b = encoded_sb();
    patch(&mut b);
    reseal(&mut b, off::CRC);
    assert_eq!(Superblock::decode(&b), Err(want));
}

fn mutated(want: FormatError, f: impl FnOnce(&mut Superblock)) {
    let mut sb = sample_sb();
    f(&mut sb);
    assert_eq!(sb.validate(), Err(want));
    let mut buf = vec![0u8; SB_BYTES];
    assert_eq!(sb.encode(&mut buf), Err(want));
}

#[test]
fn round_trip_and_every_field_offset() {
    let b = encoded_sb();
    assert_eq!(b.len(), 16384);
    let sb = Superblock::decode(&b).unwrap();
    assert_eq!(sb, sample_sb());

    assert_eq!(&b[0..8], b"STRIA_SB");
    assert_eq!(le::get_u32(&b, off::VERSION), Ok(1));
    assert_eq!(le::get_u32(&b, off::SIZE), Ok(16384));
    assert_eq!(
        le::get_u32(&b, off::CRC),
        Ok(crc::crc32c_skip_field(&b, off::CRC).unwrap())
    );
    assert_eq!(le::get_u64(&b, off::COMPAT), Ok(1));
    assert_eq!(le::get_u64(&b, off::RO_COMPAT), Ok(1));
    assert_eq!(le::get_u64(&b, off::INCOMPAT), Ok(1));
    assert_eq!(le::get_u64(&b, off::GENERATION), Ok(42));
    assert_eq!(le::get_u64(&b, off::CTIME), Ok(1_700_000_000));
    assert_eq!(le::get_u64(&b, off::MTIME), Ok(1_700_000_500));
    assert_eq!(&b[72..88], &ARRAY.0);
    assert_eq!(b[off::MEMBER_INDEX], 1);
    assert_eq!(b[off::MEMBER_COUNT], 4);
    assert_eq!(b[off::GROUP_COUNT], 2);
    assert_eq!(le::get_u32(&b, off::NEXT_VOLUME_ID), Ok(3));
    assert_eq!(le::get_u64(&b, off::DATA_START), Ok(256));
    assert_eq!(le::get_u64(&b, off::DATA_END), Ok((1 << 20) - 256));
    assert_eq!(le::get_u64(&b, off::LOG_SEQ), Ok(777));
    assert_eq!(le::get_u64(&b, off::LOG_LBA), Ok(4096));
    assert_eq!(b[off::LOG_MEMBER], 2);
    assert_eq!(&b[off::ARRAY_NAME..off::ARRAY_NAME + 6], b"pool0\0");

    let m = member(3);
    assert_eq!(&b[m..m + 16], &member_uuid(3).0);
    assert_eq!(le::get_u64(&b, m + off::M_SIZE), Ok(1 << 20));
    assert_eq!(b[m + off::M_STATE], 2);
    assert!(b[member(4)..off::GROUPS].iter().all(|&x| x == 0));

    let g = group(0);
    assert_eq!(le::get_u32(&b, g + off::G_MEMBERS), Ok(0b1111));
    assert_eq!(b[g + off::G_RAID_TYPE], 6);
    assert_eq!(b[g + off::G_WIDTH], 4);
    assert_eq!(le::get_u32(&b, g + off::G_STRIP_BLOCKS), Ok(64));
    assert_eq!(b[group(1) + off::G_RAID_TYPE], 1);

    let v = volume(5);
    assert_eq!(le::get_u32(&b, v + off::V_ID), Ok(2));
    assert_eq!(le::get_u32(&b, v + off::V_FLAGS), Ok(3));
    assert_eq!(le::get_u64(&b, v + off::V_SIZE), Ok(262_144));
    assert_eq!(b[v + off::V_LAYOUT], 1);
    assert_eq!(b[v + off::V_COPY_META], 2);
    assert_eq!(b[v + off::V_GROUP], 1);
    assert_eq!(b[v + off::V_DIVERGENCE], 5);
    assert_eq!(le::get_u32(&b, v + off::V_PARENT), Ok(1));
    assert_eq!(le::get_u32(&b, v + off::V_ORIGIN), Ok(1));
    assert_eq!(le::get_u64(&b, v + off::V_COPY_GEN), Ok(700));
    assert_eq!(le::get_u64(&b, v + off::V_CTIME), Ok(1_700_000_400));
    assert_eq!(&b[v + off::V_NAME..v + off::V_NAME + 11], b"vol-a-snap\0");
    assert!(b[volume(1)..volume(5)].iter().all(|&x| x == 0));
    assert!(b[off::END_VOLUMES..].iter().all(|&x| x == 0));

    assert_eq!(sb.members().len(), 4);
    assert_eq!(sb.groups().len(), 2);
    assert_eq!(sb.this_member().uuid, member_uuid(1));
    assert_eq!(sb.volume(2).map(|v| v.parent_id), Some(1));
    assert_eq!(sb.volume(3), None);
    assert_eq!(sb.free_volume_slot(), Some(1));
    assert_eq!(name_str(&sb.array_name), "pool0");
    assert!(!sb.needs_read_only());
}

#[test]
fn decode_errors_from_bytes() {
    let b = encoded_sb();
    assert_eq!(Superblock::decode(&b[..SB_BYTES - 1]), Err(BufferTooSmall));
    let mut x = b.clone();
    x[3] = b'x';
    assert_eq!(Superblock::decode(&x), Err(BadMagic));
    let mut x = b.clone();
    x[off::VERSION] = 2;
    assert_eq!(Superblock::decode(&x), Err(BadVersion));
    let mut x = b.clone();
    x[off::SIZE + 1] = 0x10;
    assert_eq!(Superblock::decode(&x), Err(BadSize));
    let mut x = b.clone();
    x[SB_BYTES - 1] = 1;
    assert_eq!(Superblock::decode(&x), Err(BadChecksum));

    // Reserved bytes are covered by the CRC but not interpreted.
    let mut x = b.clone();
    x[SB_BYTES - 1] = 1;
    x[off::LOG_MEMBER + 1] = 9;
    reseal(&mut x, off::CRC);
    assert_eq!(Superblock::decode(&x), Ok(sample_sb()));

    patched(UnknownIncompat, |b| b[off::INCOMPAT + 7] = 0x80);
    patched(BadMemberEntry, |b| b[72..88].fill(0));
    patched(BadName, |b| b[off::ARRAY_NAME + 1] = 0x07);
    patched(BadName, |b| b[off::ARRAY_NAME + 10] = b'x');
    patched(BadMemberCount, |b| b[off::MEMBER_COUNT] = 1);
    patched(BadMemberCount, |b| b[off::MEMBER_COUNT] = 33);
    patched(BadMemberIndex, |b| b[off::MEMBER_INDEX] = 4);
    patched(BadMemberEntry, |b| b[member(2) + 15] = 1);
    patched(BadMemberEntry, |b| b[member(2)..member(2) + 16].fill(0));
    patched(BadMemberEntry, |b| {
        le::put_u64(b, member(0) + off::M_SIZE, 0).unwrap()
    });
    patched(BadMemberEntry, |b| b[member(0) + off::M_STATE] = 3);
    patched(BadMemberEntry, |b| b[member(9) + 1] = 1);
    patched(BadDataArea, |b| le::put_u64(b, off::DATA_START, 4).unwrap());
    patched(BadDataArea, |b| le::put_u64(b, off::DATA_END, 256).unwrap());
    patched(BadDataArea, |b| {
        le::put_u64(b, off::DATA_END, (1 << 20) - 3).unwrap()
    });
    patched(BadLogHead, |b| b[off::LOG_MEMBER] = 0xff);
    patched(BadLogHead, |b| b[off::LOG_MEMBER] = 4);
    patched(BadLogHead, |b| {
        le::put_u64(b, off::LOG_LBA, 1 << 20).unwrap()
    });
    patched(BadLogHead, |b| {
        b[off::LOG_MEMBER] = 0xff;
        le::put_u64(b, off::LOG_LBA, 0).unwrap();
    });
    patched(BadGroupCount, |b| b[off::GROUP_COUNT] = 0);
    patched(BadGroupCount, |b| b[off::GROUP_COUNT] = 9);
    patched(BadGroup, |b| le::put_u32(b, group(0), 0).unwrap());
    patched(BadGroup, |b| le::put_u32(b, group(0), 0b10001).unwrap());
    patched(BadGroup, |b| b[group(1) + off::G_WIDTH] = 3);
    patched(BadGroup, |b| b[group(1) + off::G_RAID_TYPE] = 2);
    patched(BadGroup, |b| b[group(0) + off::G_WIDTH] = 2);
    patched(BadGroup, |b| {
        le::put_u32(b, group(0) + off::G_STRIP_BLOCKS, 0).unwrap()
    });
    patched(BadGroup, |b| {
        le::put_u32(b, group(0) + off::G_STRIP_BLOCKS, 40_000).unwrap()
    });
    patched(BadGroup, |b| b[group(5) + off::G_WIDTH] = 1);
    patched(BadVolume, |b| b[volume(0) + off::V_ID] = 3);
    patched(BadVolume, |b| b[volume(0) + off::V_FLAGS] = 8);
    patched(BadVolume, |b| b[volume(0) + off::V_SIZE..][..8].fill(0));
    patched(BadVolume, |b| b[volume(0) + off::V_LAYOUT] = 0);
    patched(BadVolume, |b| b[volume(0) + off::V_COPY_META] = 7);
    patched(BadVolume, |b| b[volume(0) + off::V_COPY_META] = 1);
    patched(BadVolume, |b| b[volume(0) + off::V_GROUP] = 2);
    patched(BadVolume, |b| b[volume(5) + off::V_PARENT] = 0);
    patched(BadVolume, |b| b[volume(5) + off::V_ORIGIN] = 2);
    patched(BadVolume, |b| b[volume(5) + off::V_COPY_META] = 0);
    // A divergence map only for copies, and only in a bit-map form.
    patched(BadVolume, |b| b[volume(0) + off::V_DIVERGENCE] = 4);
    patched(BadVolume, |b| b[volume(5) + off::V_DIVERGENCE] = 1);
    patched(BadVolume, |b| b[volume(5) + off::V_DIVERGENCE] = 7);
    patched(BadVolume, |b| b[volume(3) + off::V_NAME] = b'a');
    patched(DuplicateVolume, |b| b[volume(5) + off::V_ID] = 1);
    patched(BadName, |b| b[volume(5) + off::V_NAME] = 0);
    patched(BadName, |b| b[volume(5) + off::V_NAME + 1] = 0xc3);
}

#[test]
fn validate_errors_from_struct() {
    mutated(UnknownIncompat, |sb| sb.incompat |= 1 << 40);
    mutated(BadMemberEntry, |sb| sb.array_uuid = Uuid::NIL);
    mutated(BadMemberCount, |sb| sb.member_count = 0);
    mutated(BadMemberIndex, |sb| sb.member_index = 200);
    mutated(BadMemberEntry, |sb| sb.members[31].size_blocks = 1);
    mutated(BadDataArea, |sb| sb.data_start = sb.data_end);
    mutated(BadLogHead, |sb| sb.log_head = None);
    mutated(BadGroup, |sb| sb.groups[7].strip_blocks = 1);
    mutated(BadGroup, |sb| {
        sb.groups[0] = StripeGroup {
            members: 0b1111,
            raid_type: RaidType::Raid5,
            width: 2,
            strip_blocks: 8,
        }
    });
    mutated(BadVolume, |sb| sb.next_volume_id = 2);
    mutated(DuplicateVolume, |sb| sb.volumes[9] = sb.volumes[0]);
    mutated(BadVolume, |sb| {
        if let Some(v) = sb.volumes[0].as_mut() {
            v.copy_generation = 5;
        }
    });
    mutated(BadVolume, |sb| {
        if let Some(v) = sb.volumes[5].as_mut() {
            v.parent_id = v.id;
        }
    });
    mutated(BadName, |sb| sb.array_name[63] = b'z');
    let mut buf = vec![0u8; SB_BYTES - 1];
    assert_eq!(sample_sb().encode(&mut buf), Err(BufferTooSmall));
}

#[test]
fn feature_bits() {
    // Unknown compat bits are accepted and kept.
    let mut sb = sample_sb();
    sb.compat |= 1 << 63;
    let mut b = vec![0u8; SB_BYTES];
    sb.encode(&mut b).unwrap();
    let d = Superblock::decode(&b).unwrap();
    assert_eq!(d.compat, sb.compat);
    assert!(!d.needs_read_only());
    // Unknown ro-compat bits are reported, not refused.
    sb.ro_compat |= 1 << 5;
    sb.encode(&mut b).unwrap();
    let d = Superblock::decode(&b).unwrap();
    assert!(d.needs_read_only());
    assert_eq!(d.unknown_ro_compat(), 1 << 5);
    // Unknown incompat bits are refused even with a good checksum.
    let mut b = encoded_sb();
    le::put_u64(
        &mut b,
        off::INCOMPAT,
        feature::INCOMPAT_LOG_STRIPES | 1 << 40,
    )
    .unwrap();
    reseal(&mut b, off::CRC);
    assert_eq!(Superblock::decode(&b), Err(UnknownIncompat));
    // Volume lists are known: a pool that uses them assembles.
    let lists = feature::INCOMPAT_LOG_STRIPES | feature::INCOMPAT_VOLUME_LISTS;
    le::put_u64(&mut b, off::INCOMPAT, lists).unwrap();
    reseal(&mut b, off::CRC);
    assert_eq!(Superblock::decode(&b).map(|d| d.incompat), Ok(lists));
}

#[test]
fn member_locations() {
    assert_eq!(
        locations(1 << 20),
        Ok(Locations {
            primary_block: 1,
            backup_block: (1 << 20) - 4,
            data_start: 256,
            data_end: (1 << 20) - 256,
        })
    );
    // An unaligned size: the data area ends on the 1 MiB boundary below
    // the backup.
    let l = locations(1000).unwrap();
    assert_eq!((l.backup_block, l.data_start, l.data_end), (996, 256, 768));
    assert_eq!(locations(516).map(|l| l.data_end), Ok(512));
    assert_eq!(locations(515), Err(MemberTooSmall));
    assert_eq!(locations(3), Err(MemberTooSmall));
    assert_eq!(locations(0), Err(MemberTooSmall));
    let l = locations(u64::MAX).unwrap();
    assert_eq!(l.backup_block + SB_BLOCKS, u64::MAX);
    assert!(l.data_end <= l.backup_block);
}

#[test]
fn newest_copy_wins() {
    let a = sample_sb();
    let mut b = sample_sb();
    b.generation += 1;
    assert_eq!(pick_newest(Ok(&a), Ok(&b)), Ok((SbCopy::Backup, &b)));
    assert_eq!(pick_newest(Ok(&b), Ok(&a)), Ok((SbCopy::Primary, &b)));
    assert_eq!(pick_newest(Ok(&a), Ok(&a)), Ok((SbCopy::Primary, &a)));
    assert_eq!(
        pick_newest(Ok(&a), Err(BadChecksum)),
        Ok((SbCopy::Primary, &a))
    );
    assert_eq!(
        pick_newest(Err(BadChecksum), Ok(&a)),
        Ok((SbCopy::Backup, &a))
    );
    assert_eq!(
        pick_newest(Err(BadMagic), Err(BadChecksum)),
        Err(BadChecksum)
    );
    assert_eq!(pick_newest(Err(BadVersion), Err(BadMagic)), Err(BadVersion));
    assert_eq!(pick_newest(Err(BadMagic), Err(BadMagic)), Err(BadMagic));
    let mut other = sample_sb();
    other.array_uuid = Uuid([7; 16]);
    assert_eq!(pick_newest(Ok(&a), Ok(&other)), Err(CopiesDisagree));
    let mut other = sample_sb();
    other.member_index = 2;
    assert_eq!(pick_newest(Ok(&a), Ok(&other)), Err(CopiesDisagree));
    let mut other = sample_sb();
    other.members[1] = MemberEntry {
        uuid: Uuid([9; 16]),
        ..other.members[1]
    };
    assert_eq!(pick_newest(Ok(&a), Ok(&other)), Err(CopiesDisagree));
}

#[test]
fn names() {
    let mut n = [0u8; 8];
    assert_eq!(set_name(&mut n, "abc"), Ok(()));
    assert_eq!(&n, b"abc\0\0\0\0\0");
    assert_eq!(name_str(&n), "abc");
    assert_eq!(set_name(&mut n, "12345678"), Ok(()));
    assert_eq!(name_str(&n), "12345678");
    assert_eq!(set_name(&mut n, "123456789"), Err(BadName));
    assert_eq!(set_name(&mut n, "a\nb"), Err(BadName));
    assert_eq!(set_name(&mut n, "a\0b"), Err(BadName));
    assert_eq!(set_name(&mut n, "é"), Err(BadName));
    assert_eq!(check_name(b"ok\0\0"), Ok(()));
    assert_eq!(check_name(b"\0x\0\0"), Err(BadName));
    assert_eq!(check_name(b""), Ok(()));
    assert_eq!(name_str(&[0xff, 0]), "");
}

#[test]
fn decode_into_reuses_storage() {
    let mut sb = Box::new(Superblock::EMPTY);
    sb.decode_into(&encoded_sb()).unwrap();
    assert_eq!(*sb, sample_sb());
    let log = StripeLocation {
        member: 2,
        lba: 4096,
    };
    assert_eq!(sb.log_head, Some(log));
    assert_eq!(sb.volume(1).map(|v| v.copy_meta), Some(CopyMeta::None));
}

#[test]
fn copy_form_follows_the_size_of_the_map() {
    let from = CopyMeta::CHANGED_FROM_MAP_BYTES;
    assert_eq!(CopyMeta::auto(0), CopyMeta::FullPointerTable);
    assert_eq!(CopyMeta::auto(from - 4096), CopyMeta::FullPointerTable);
    assert_eq!(CopyMeta::auto(from), CopyMeta::ChangedBlocks);
    assert_eq!(CopyMeta::auto(u64::MAX), CopyMeta::ChangedBlocks);
}

#[test]
fn sizes_past_the_bounds_are_refused() {
    // A volume or member whose size in bytes would not fit a u64.
    patched(BadVolume, |b| {
        le::put_u64(b, volume(0) + off::V_SIZE, u64::MAX).unwrap();
    });
    patched(BadVolume, |b| {
        le::put_u64(b, volume(0) + off::V_SIZE, MAX_VOLUME_BLOCKS + 1).unwrap();
    });
    patched(BadMemberEntry, |b| {
        le::put_u64(b, member(2) + off::M_SIZE, u64::MAX / 2).unwrap();
    });
    patched(BadMemberEntry, |b| {
        le::put_u64(b, member(0) + off::M_SIZE, MAX_MEMBER_BLOCKS + 1).unwrap();
    });
    // The largest allowed sizes pass, and their byte counts fit.
    let mut b = encoded_sb();
    le::put_u64(&mut b, volume(0) + off::V_SIZE, MAX_VOLUME_BLOCKS).unwrap();
    le::put_u64(&mut b, member(2) + off::M_SIZE, MAX_MEMBER_BLOCKS).unwrap();
    reseal(&mut b, off::CRC);
    assert!(Superblock::decode(&b).is_ok());
    assert!(MAX_VOLUME_BLOCKS.checked_mul(4096).is_some());
    assert!(MAX_MEMBER_BLOCKS.checked_mul(4096).is_some());
}
