// SPDX-License-Identifier: GPL-2.0

//! Stripe header codec, builder and geometry: every field and every error.

mod common;

use common::*;
use stria_core::crc;
use stria_core::error::FormatError;
use stria_core::error::FormatError::*;
use stria_core::geometry;
use stria_core::geometry::RaidType;
use stria_core::geometry::Run;
use stria_core::geometry::StripRole;
use stria_core::header::looks_like_header;
use stria_core::header::off;
use stria_core::header::DataArea;
use stria_core::header::HeaderBuilder;
use stria_core::header::Piece;
use stria_core::header::StripeHeader;
use stria_core::header::StripeLocation;
use stria_core::header::HEADER_BYTES;
use stria_core::header::LIST_IDS;
use stria_core::header::MAX_ALSO;
use stria_core::header::MAX_PIECES;
use stria_core::header::MAX_SHARERS;
use stria_core::header::SAME_AS_PREVIOUS;
use stria_core::le;
use stria_core::uuid::Uuid;

fn strip(i: usize) -> usize {
    off::STRIPS + i * off::STRIP_SIZE
}

fn piece(i: usize) -> usize {
    off::PIECES + i * off::PIECE_SIZE
}

/// Patches the encoded sample, reseals it and expects `want` from decode.
fn patched(want: FormatError, patch: impl FnOnce(&mut [u8])) {
    let mut b = encoded_header();
    patch(&mut b);
    reseal(&mut b, off::CRC);
    assert_eq!(StripeHeader::decode(&b), Err(want));
}

/// Mutates the decoded sample and expects `want` from validate and encode.
fn mutated(want: FormatError, f: impl FnOnce(&mut StripeHeader)) {
    let mut h = *sample_builder().header();
    f(&mut h);
    assert_eq!(h.validate(), Err(want));
    let mut buf = [0u8; HEADER_BYTES];
    assert_eq!(h.encode(&mut buf), Err(want));
}

#[test]
fn round_trip_and_every_field_offset() {
    let b = encoded_header();
    let h = StripeHeader::decode(&b).unwrap();
    assert_eq!(&h, sample_builder().header());

    assert_eq!(&b[0..8], b"STRIAHDR");
    assert_eq!(le::get_u16(&b, off::VERSION), Ok(1));
    assert_eq!(le::get_u16(&b, off::FLAGS), Ok(0));
    assert_eq!(
        le::get_u32(&b, off::CRC),
        Ok(crc::crc32c_skip_field(&b, off::CRC).unwrap())
    );
    assert_eq!(&b[16..32], &ARRAY.0);
    assert_eq!(le::get_u64(&b, off::SEQ), Ok(1000));
    assert_eq!(
        le::get_u64(&b, off::TIMESTAMP),
        Ok(1_700_000_000_123_456_789)
    );
    assert_eq!(le::get_u64(&b, off::PREV_LBA), Ok(8192));
    assert_eq!(b[off::PREV_MEMBER], 3);
    assert_eq!(off::DURABLE_SEQ, 68);
    assert_eq!(le::get_u64(&b, off::DURABLE_SEQ), Ok(990));
    assert_eq!(b[off::RAID_TYPE], 5);
    assert_eq!(b[off::NR_STRIPS], 5);
    assert_eq!(b[off::PARITY_INDEX], 2);
    assert_eq!(b[off::Q_INDEX], 0xff);
    assert_eq!(b[off::GROUP], 0);
    assert_eq!(le::get_u16(&b, off::NR_PIECES), Ok(6));
    assert_eq!(le::get_u32(&b, off::STRIP_BLOCKS), Ok(16));
    assert_eq!((off::ALSO, off::RESERVED, off::RESERVED_SIZE), (76, 124, 4));
    assert!(b[off::RESERVED..off::STRIPS].iter().all(|&x| x == 0));

    // Strip 1: member 3, LBA 1256, 16 live blocks, 1 piece.
    let s = strip(1);
    assert_eq!(le::get_u64(&b, s + off::S_LBA), Ok(1256));
    assert_eq!(le::get_u32(&b, s + off::S_ACTIVE), Ok(16));
    assert_eq!(le::get_u32(&b, s + off::S_DATA_CRC), Ok(0x1000_0001));
    assert_eq!(le::get_u16(&b, s + off::S_NR_PIECES), Ok(1));
    assert_eq!(b[s + off::S_MEMBER], 3);
    assert_eq!(b[s + off::S_FLAGS], 0);
    // The parity strip holds no pieces.
    assert_eq!(le::get_u16(&b, strip(2) + off::S_NR_PIECES), Ok(0));
    assert!(b[strip(5)..off::PIECES].iter().all(|&x| x == 0));

    // Piece 1: volume 2, host 5000+3 blocks at 13 in strip 0.
    let p = piece(1);
    assert_eq!(le::get_u64(&b, p + off::P_HOST_LBA), Ok(5000));
    assert_eq!(le::get_u32(&b, p + off::P_VOLUME), Ok(2));
    assert_eq!(le::get_u16(&b, p + off::P_HOST_LEN), Ok(3));
    assert_eq!(le::get_u16(&b, p + off::P_START), Ok(13));
    assert_eq!(le::get_u16(&b, p + off::P_LEN), Ok(3));
    assert_eq!(le::get_u16(&b, p + off::P_ALSO), Ok(0));
    assert!(b[off::ALSO..off::RESERVED].iter().all(|&x| x == 0));
    // Piece 4 is the trim: host length 5, nothing in the strip.
    let p = piece(4);
    assert_eq!(le::get_u64(&b, p + off::P_HOST_LBA), Ok(90));
    assert_eq!(le::get_u16(&b, p + off::P_HOST_LEN), Ok(5));
    assert_eq!(le::get_u16(&b, p + off::P_LEN), Ok(0));
    assert!(b[piece(6)..].iter().all(|&x| x == 0));
}

#[test]
fn builder_lays_out_pieces() {
    let b = sample_builder();
    let h = b.header();
    assert_eq!(b.used_blocks(), 34);
    assert_eq!(b.free_blocks(), 64 - 34);
    assert_eq!(b.free_pieces(), MAX_PIECES - 6);
    assert!(!b.is_empty());
    let want = [
        (
            0,
            Piece {
                volume: 1,
                host_lba: 100,
                host_len: 13,
                start: 0,
                len: 13,
                also: 0,
            },
        ),
        (
            0,
            Piece {
                volume: 2,
                host_lba: 5000,
                host_len: 3,
                start: 13,
                len: 3,
                also: 0,
            },
        ),
        (
            1,
            Piece {
                volume: 2,
                host_lba: 5003,
                host_len: 16,
                start: 0,
                len: 16,
                also: 0,
            },
        ),
        (
            3,
            Piece {
                volume: 2,
                host_lba: 5019,
                host_len: 1,
                start: 0,
                len: 1,
                also: 0,
            },
        ),
        (
            3,
            Piece {
                volume: 1,
                host_lba: 90,
                host_len: 5,
                start: 0,
                len: 0,
                also: 0,
            },
        ),
        (
            3,
            Piece {
                volume: 7,
                host_lba: 0,
                host_len: 1,
                start: 1,
                len: 1,
                also: 0,
            },
        ),
    ];
    let got: Vec<(usize, Piece)> = h.pieces_with_strip().map(|(s, p)| (s, *p)).collect();
    assert_eq!(got, want);
    assert_eq!(h.pieces_of(0).unwrap().len(), 2);
    assert_eq!(h.pieces_of(2).unwrap().len(), 0);
    assert_eq!(h.pieces_of(3).unwrap().len(), 3);
    assert_eq!(h.pieces_of(5), Err(OutOfRange));
    let active: Vec<u32> = h.strips().iter().map(|s| s.active_count).collect();
    assert_eq!(active, [16, 16, 0, 2, 0]);
    assert!(want[4].1.is_trim());
}

#[test]
fn builder_reports_full() {
    let mut b = HeaderBuilder::new(&params(RaidType::Raid1, 8, None, None), &locs(2)).unwrap();
    assert!(b.is_empty());
    let a = b.append(1, 0, 5).unwrap();
    assert_eq!((a.data_offset, a.blocks), (0, 5));
    let a = b.append(1, 50, 5).unwrap();
    assert_eq!((a.data_offset, a.blocks), (5, 3));
    assert_eq!(b.append(1, 60, 1), Err(DoesNotFit));
    // Trims still fit while piece slots remain.
    assert_eq!(b.append_trim(1, 0, 100_000), Ok(65_535));
    assert_eq!(b.append_trim(1, 65_535, 10), Ok(10));
    assert_eq!(b.header().pieces().count(), 4);

    // Piece table exhaustion: one-block writes to scattered addresses.
    let mut b = HeaderBuilder::new(&params(RaidType::Raid0, 1024, None, None), &locs(1)).unwrap();
    for i in 0..MAX_PIECES as u64 {
        b.append(1, i * 2, 1).unwrap();
    }
    assert_eq!(b.free_pieces(), 0);
    assert_eq!(b.append(1, 10_000, 1), Err(DoesNotFit));
    assert_eq!(b.append_trim(1, 10_000, 1), Err(DoesNotFit));
    // A contiguous continuation still merges into the last piece.
    assert_eq!(
        b.append(1, 2 * (MAX_PIECES as u64 - 1) + 1, 4)
            .unwrap()
            .blocks,
        4
    );
    let mut buf = [0u8; HEADER_BYTES];
    b.encode(&mut buf).unwrap();
    assert_eq!(StripeHeader::decode(&buf).unwrap(), *b.header());

    assert_eq!(b.append(0, 1, 1), Err(BadVolumeId));
    assert_eq!(b.append(1, 1, 0), Err(ZeroLength));
    assert_eq!(b.append(1, u64::MAX, 2), Err(Overflow));
    assert_eq!(b.append_trim(0, 1, 1), Err(BadVolumeId));
    assert_eq!(b.append_trim(1, 1, 0), Err(ZeroLength));
    assert_eq!(b.append_trim(1, u64::MAX, 2), Err(Overflow));
    assert_eq!(b.set_data_crc(1, 0), Err(OutOfRange));
    let mut e = HeaderBuilder::EMPTY;
    assert_eq!(e.append(1, 0, 1), Err(DoesNotFit));
    assert_eq!(e.append_trim(1, 0, 1), Err(BadStripSize));
}

#[test]
fn builder_refuses_bad_stripes() {
    let p = params(RaidType::Raid5, 16, Some(2), None);
    assert_eq!(HeaderBuilder::new(&p, &locs(2)).err(), Some(BadStripCount));
    let many: Vec<StripeLocation> = (0..33)
        .map(|i| StripeLocation {
            member: i % 32,
            lba: 0,
        })
        .collect();
    assert_eq!(HeaderBuilder::new(&p, &many).err(), Some(BadStripCount));
    let mut dup = locs(3);
    dup[2].member = dup[0].member;
    assert_eq!(HeaderBuilder::new(&p, &dup).err(), Some(DuplicateMember));
    let mut p6 = params(RaidType::Raid6, 16, Some(0), Some(0));
    assert_eq!(
        HeaderBuilder::new(&p6, &locs(4)).err(),
        Some(BadParityIndex)
    );
    p6.q_index = Some(3);
    assert!(HeaderBuilder::new(&p6, &locs(4)).is_ok());
}

#[test]
fn location_array_and_data_checks() {
    let h = StripeHeader::decode(&encoded_header()).unwrap();
    assert_eq!(h.strip_at(3, 1256), Some(1));
    assert_eq!(h.check_location(3, 1256), Ok(1));
    assert_eq!(h.check_location(3, 1257), Err(WrongLocation));
    assert_eq!(h.check_location(4, 1256), Err(WrongLocation));
    assert_eq!(h.check_array(&ARRAY), Ok(()));
    assert_eq!(h.check_array(&Uuid([1; 16])), Err(WrongArray));
    assert_eq!(
        h.location(4),
        Ok(StripeLocation {
            member: 12,
            lba: 4256
        })
    );
    assert_eq!(h.location(5), Err(OutOfRange));
    let data = vec![0x3cu8; 16 * 4096];
    let mut b = sample_builder();
    b.set_data_crc(1, crc::crc32c(&data)).unwrap();
    let h = b.header();
    assert_eq!(h.verify_strip_data(1, &data), Ok(()));
    assert_eq!(h.verify_strip_data(0, &data), Err(BadChecksum));
    assert_eq!(h.verify_strip_data(1, &data[1..]), Err(LengthMismatch));
    assert_eq!(h.verify_strip_data(9, &data), Err(OutOfRange));
    // The same checksum, fed a window at a time.
    let windowed = !data.chunks(3 * 4096).fold(!0, crc::update);
    assert_eq!(h.verify_strip_crc(1, windowed), Ok(()));
    assert_eq!(h.verify_strip_crc(1, windowed ^ 1), Err(BadChecksum));
    assert_eq!(h.verify_strip_crc(0, windowed), Err(BadChecksum));
    assert_eq!(h.verify_strip_crc(9, windowed), Err(OutOfRange));
    assert!(looks_like_header(&encoded_header()));
    assert!(!looks_like_header(b"STRIAHD"));
    assert!(!looks_like_header(&[0; 4096]));
}

#[test]
fn decode_errors_from_bytes() {
    let b = encoded_header();
    assert_eq!(StripeHeader::decode(&b[..4095]), Err(BufferTooSmall));
    let mut x = b.clone();
    x[0] ^= 1;
    assert_eq!(StripeHeader::decode(&x), Err(BadMagic));
    let mut x = b.clone();
    x[off::VERSION] = 2;
    assert_eq!(StripeHeader::decode(&x), Err(BadVersion));
    let mut x = b.clone();
    x[100] ^= 0x20;
    assert_eq!(StripeHeader::decode(&x), Err(BadChecksum));
    // A longer buffer is fine: only the first block is the header.
    let mut x = b.clone();
    x.extend_from_slice(&[0xee; 100]);
    assert!(StripeHeader::decode(&x).is_ok());

    patched(ReservedBits, |b| b[off::FLAGS] = 1);
    patched(ReservedBits, |b| b[off::RESERVED] = 1);
    patched(ReservedBits, |b| b[off::RESERVED + 3] = 1);
    patched(ReservedBits, |b| b[off::STRIPS - 1] = 1);
    patched(BadDurableSeq, |b| {
        le::put_u64(b, off::DURABLE_SEQ, 1000).unwrap()
    });
    patched(BadDurableSeq, |b| {
        le::put_u64(b, off::DURABLE_SEQ, u64::MAX).unwrap()
    });
    patched(ReservedBits, |b| b[strip(1) + off::S_FLAGS] = 1);
    patched(ReservedBits, |b| b[strip(1) + off::S_RESERVED] = 1);
    patched(ReservedBits, |b| b[strip(7) + off::S_MEMBER] = 1);
    // An `also` bit naming an empty table slot.
    patched(BadVolumeId, |b| b[piece(1) + off::P_ALSO] = 1);
    patched(ReservedBits, |b| b[piece(MAX_PIECES - 1)] = 1);
    patched(BadPrevious, |b| b[off::PREV_MEMBER] = 0xff);
    patched(BadPrevious, |b| b[off::PREV_MEMBER] = 32);
    patched(BadRaidType, |b| b[off::RAID_TYPE] = 3);
    patched(BadStripCount, |b| b[off::NR_STRIPS] = 33);
    patched(BadStripCount, |b| b[off::NR_STRIPS] = 0);
    patched(BadParityIndex, |b| b[off::PARITY_INDEX] = 5);
    patched(BadParityIndex, |b| b[off::PARITY_INDEX] = 0xff);
    patched(BadParityIndex, |b| b[off::Q_INDEX] = 1);
    patched(BadStripSize, |b| {
        le::put_u32(b, off::STRIP_BLOCKS, 0).unwrap()
    });
    patched(BadStripSize, |b| {
        le::put_u32(b, off::STRIP_BLOCKS, 32769).unwrap()
    });
    patched(BadGroup, |b| b[off::GROUP] = 8);
    patched(BadStripMember, |b| b[strip(0) + off::S_MEMBER] = 32);
    patched(DuplicateMember, |b| b[strip(0) + off::S_MEMBER] = 3);
    patched(TooManyPieces, |b| {
        le::put_u16(b, off::NR_PIECES, MAX_PIECES as u16 + 1).unwrap()
    });
    patched(Overflow, |b| {
        le::put_u64(b, strip(0) + off::S_LBA, u64::MAX - 10).unwrap()
    });
    patched(WrongArray, |b| b[16..32].fill(0));
    // Piece counts: one piece moved to the parity strip, or lost.
    patched(PieceCountMismatch, |b| {
        le::put_u16(b, strip(3) + off::S_NR_PIECES, 2).unwrap();
        le::put_u16(b, strip(2) + off::S_NR_PIECES, 1).unwrap();
    });
    patched(PieceCountMismatch, |b| {
        le::put_u16(b, off::NR_PIECES, 7).unwrap()
    });
    patched(PieceCountMismatch, |b| {
        le::put_u16(b, strip(3) + off::S_NR_PIECES, 4).unwrap()
    });
    patched(BadActiveCount, |b| {
        le::put_u32(b, strip(2) + off::S_ACTIVE, 1).unwrap()
    });
    patched(BadActiveCount, |b| {
        le::put_u32(b, strip(3) + off::S_ACTIVE, 3).unwrap()
    });
    patched(BadVolumeId, |b| {
        le::put_u32(b, piece(0) + off::P_VOLUME, 0).unwrap()
    });
    patched(BadPieceLength, |b| {
        le::put_u16(b, piece(0) + off::P_HOST_LEN, 12).unwrap()
    });
    patched(BadPieceLength, |b| {
        le::put_u16(b, piece(4) + off::P_START, 1).unwrap()
    });
    // A trim record without blocks reads as a list entry, whose ids
    // (host LBA 40: 40, then 0, then the volume) have a gap.
    patched(BadVolumeId, |b| {
        le::put_u16(b, piece(4) + off::P_HOST_LEN, 0).unwrap()
    });
    patched(PieceOutOfStrip, |b| {
        le::put_u16(b, piece(5) + off::P_START, 16).unwrap()
    });
    patched(PieceOverlap, |b| {
        le::put_u16(b, piece(1) + off::P_START, 12).unwrap()
    });
    patched(Overflow, |b| {
        le::put_u64(b, piece(5) + off::P_HOST_LBA, u64::MAX).unwrap()
    });
}

#[test]
fn validate_errors_from_struct() {
    mutated(WrongArray, |h| h.array_uuid = Uuid::NIL);
    mutated(BadStripCount, |h| h.nr_strips = 2);
    mutated(BadParityIndex, |h| h.q_index = Some(0));
    mutated(BadStripSize, |h| h.strip_blocks = 0);
    mutated(BadGroup, |h| h.group = 200);
    mutated(BadPrevious, |h| {
        h.prev = Some(StripeLocation { member: 40, lba: 0 })
    });
    mutated(ReservedBits, |h| h.strips[20].lba = 1);
    mutated(ReservedBits, |h| h.pieces[100].volume = 1);
    mutated(TooManyPieces, |h| h.nr_pieces = 161);
    mutated(BadVolumeId, |h| h.pieces[2].volume = 0);
    mutated(PieceOverlap, |h| h.pieces[5].start = 0);
    mutated(BadStripMember, |h| h.strips[4].member = 255);
    mutated(BadDurableSeq, |h| h.durable_seq = h.seq);
    mutated(BadDurableSeq, |h| h.durable_seq = h.seq + 1);
    mutated(BadDurableSeq, |h| {
        h.seq = 0;
        h.durable_seq = 1;
    });
}

#[test]
fn durable_seq_bounds() {
    // Anything below the stripe's own sequence number is accepted, and 0
    // (nothing known durable) is accepted even for sequence number 0.
    for (seq, durable) in [(1000, 999), (1000, 1), (1000, 0), (1, 0), (0, 0)] {
        let mut h = *sample_builder().header();
        h.seq = seq;
        h.durable_seq = durable;
        let mut buf = [0u8; HEADER_BYTES];
        h.encode(&mut buf).unwrap();
        assert_eq!(le::get_u64(&buf, off::DURABLE_SEQ), Ok(durable));
        assert_eq!(StripeHeader::decode(&buf), Ok(h));
    }
    // The builder copies it from the parameters and refuses a bad one,
    // leaving itself empty.
    let mut p = params(RaidType::Raid1, 8, None, None);
    let b = HeaderBuilder::new(&p, &locs(2)).unwrap();
    assert_eq!(b.header().durable_seq, 990);
    p.durable_seq = p.seq;
    assert_eq!(HeaderBuilder::new(&p, &locs(2)).err(), Some(BadDurableSeq));
    let mut b = HeaderBuilder::new(&params(RaidType::Raid0, 8, None, None), &locs(1)).unwrap();
    assert_eq!(b.reset(&p, &locs(2)), Err(BadDurableSeq));
    assert_eq!(*b.header(), StripeHeader::EMPTY);
}

#[test]
fn geometry_roles_and_runs() {
    let h = StripeHeader::decode(&encoded_header()).unwrap();
    let roles: Vec<StripRole> = (0..5)
        .map(|i| geometry::strip_role(&h, i).unwrap())
        .collect();
    use StripRole::*;
    assert_eq!(roles, [Data(0), Data(1), P, Data(2), Data(3)]);
    assert_eq!(geometry::strip_role(&h, 5), Err(OutOfRange));
    assert_eq!(geometry::data_strip_count(&h), 4);
    assert_eq!(geometry::data_blocks(&h), 64);
    assert_eq!(geometry::strip_span(&h), 17);
    let ds: Vec<usize> = (0..4)
        .map(|k| geometry::data_strip(&h, k).unwrap())
        .collect();
    assert_eq!(ds, [0, 1, 3, 4]);
    assert_eq!(geometry::data_strip(&h, 4), Err(OutOfRange));

    // Blocks 10..40 of the data space: strips 0, 1 and 3.
    let runs: Vec<Run> = geometry::map_data(&h, 10, 30).unwrap().collect();
    let s = |i: usize| h.strips[i];
    assert_eq!(
        runs,
        [
            Run {
                strip: 0,
                member: s(0).member,
                lba: s(0).lba + 1 + 10,
                blocks: 6
            },
            Run {
                strip: 1,
                member: s(1).member,
                lba: s(1).lba + 1,
                blocks: 16
            },
            Run {
                strip: 3,
                member: s(3).member,
                lba: s(3).lba + 1,
                blocks: 8
            },
        ]
    );
    assert_eq!(geometry::map_data(&h, 0, 0).unwrap().count(), 0);
    assert_eq!(geometry::map_data(&h, 60, 5).err(), Some(OutOfRange));
    assert_eq!(geometry::map_data(&h, u64::MAX, 5).err(), Some(Overflow));
    let mut bad = h;
    bad.strip_blocks = 0;
    assert_eq!(geometry::map_data(&bad, 0, 1).err(), Some(BadStripSize));
    bad.nr_strips = 1;
    assert_eq!(geometry::map_data(&bad, 0, 1).err(), Some(BadStripCount));

    // Pieces to member addresses.
    let (si, p) = h.pieces_with_strip().nth(2).unwrap();
    let r = geometry::piece_run(&h, si, p).unwrap().unwrap();
    assert_eq!(
        (r.strip, r.member, r.lba, r.blocks),
        (1, s(1).member, s(1).lba + 1, 16)
    );
    let (si, p) = h.pieces_with_strip().nth(4).unwrap();
    assert_eq!(geometry::piece_run(&h, si, p), Ok(None));
    let (si, p) = h.pieces_with_strip().nth(1).unwrap();
    let r = geometry::host_block_run(&h, si, p, 5001).unwrap();
    assert_eq!((r.lba, r.blocks), (s(0).lba + 1 + 14, 2));
    assert_eq!(geometry::host_block_run(&h, si, p, 5003), Err(OutOfRange));
    assert_eq!(geometry::host_block_run(&h, si, p, 4999), Err(OutOfRange));
    let mut far = *p;
    far.start = 15;
    assert_eq!(geometry::piece_run(&h, si, &far), Err(PieceOutOfStrip));
    assert_eq!(geometry::piece_run(&h, 9, p), Err(OutOfRange));
}

#[test]
fn geometry_raid6_and_raid1() {
    // RAID-6 with Q before P: strips 0 1 2 3 4 5, P at 4, Q at 1.
    let b = HeaderBuilder::new(&params(RaidType::Raid6, 8, Some(4), Some(1)), &locs(6)).unwrap();
    let h = b.header();
    use StripRole::*;
    let roles: Vec<StripRole> = (0..6)
        .map(|i| geometry::strip_role(h, i).unwrap())
        .collect();
    assert_eq!(roles, [Data(0), Q, Data(1), Data(2), P, Data(3)]);
    let ds: Vec<usize> = (0..4)
        .map(|k| geometry::data_strip(h, k).unwrap())
        .collect();
    assert_eq!(ds, [0, 2, 3, 5]);

    let b = HeaderBuilder::new(&params(RaidType::Raid1, 8, None, None), &locs(3)).unwrap();
    let h = b.header();
    let roles: Vec<StripRole> = (0..3)
        .map(|i| geometry::strip_role(h, i).unwrap())
        .collect();
    assert_eq!(roles, [Data(0), Mirror, Mirror]);
    assert_eq!(geometry::data_blocks(h), 8);
    let runs: Vec<Run> = geometry::map_data(h, 0, 8).unwrap().collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].strip, 0);
}

#[test]
fn decode_into_reuses_storage() {
    let mut h = Box::new(StripeHeader::EMPTY);
    h.decode_into(&encoded_header()).unwrap();
    assert_eq!(*h, *sample_builder().header());
    assert_eq!(h.decode_into(&[0u8; 10]), Err(BufferTooSmall));
}

#[test]
fn pieces_shared_by_copies() {
    let mut b = sample_builder();
    let before = b.used_blocks();
    // Data moved for volume 7 that copies 8 and 9 share.
    let a = b.append_for(7, &[8, 9], 300, 2).unwrap();
    assert_eq!(a.blocks, 2);
    assert_eq!(b.used_blocks(), before + 2);
    // Contiguous with the same sharers: one piece; with other sharers: a
    // new one, and 9 takes the same table slot.
    b.append_for(7, &[8, 9], 302, 1).unwrap();
    b.append_for(7, &[9], 303, 1).unwrap();
    b.append_trim_for(7, &[8], 400, 4).unwrap();
    let h = *b.header();
    assert_eq!(&h.also[..3], &[8, 9, 0]);
    let n = usize::from(h.nr_pieces);
    let last: Vec<Vec<u32>> = h.entries()[n - 3..]
        .iter()
        .map(|p| h.volumes_of(p).collect())
        .collect();
    assert_eq!(last, vec![vec![7, 8, 9], vec![7, 9], vec![7, 8]]);
    assert_eq!(h.entries()[n - 3].host_len, 3);
    let mut buf = [0u8; HEADER_BYTES];
    h.encode(&mut buf).unwrap();
    assert_eq!(le::get_u32(&buf, off::ALSO), Ok(8));
    assert_eq!(le::get_u32(&buf, off::ALSO + 4), Ok(9));
    assert_eq!(StripeHeader::decode(&buf), Ok(h));
    // A piece cannot also stand for its own volume, 0, or a volume twice.
    assert_eq!(b.append_for(7, &[7], 500, 1), Err(BadVolumeId));
    assert_eq!(b.append_for(7, &[0], 500, 1), Err(BadVolumeId));
    assert_eq!(b.append_for(7, &[8, 8], 500, 1), Err(BadVolumeId));
    // A full table: a new sharer goes to a list entry after the piece,
    // known ones still take bits.
    let mut full = sample_builder();
    let ids: Vec<u32> = (100..100 + 12).collect();
    full.append_trim_for(1, &ids, 0, 1).unwrap();
    let before = full.header().nr_pieces;
    full.append_trim_for(1, &[99], 0, 1).unwrap();
    full.append_trim_for(1, &ids[..3], 10, 1).unwrap();
    let h = *full.header();
    assert_eq!(h.nr_pieces, before + 3);
    let e = h.entries();
    let n = e.len();
    assert!(e[n - 2].is_list() && !e[n - 1].is_list());
    assert_eq!(e[n - 2].listed(), [99, 0, 0]);
    let v: Vec<Vec<u32>> = h
        .pieces()
        .skip(h.pieces().count() - 2)
        .map(|p| h.volumes_of(p).collect())
        .collect();
    assert_eq!(v, vec![vec![1, 99], vec![1, 100, 101, 102]]);
    full.encode(&mut buf).unwrap();
    assert_eq!(StripeHeader::decode(&buf), Ok(h));
    // Table rules: no repeats, no gaps.
    mutated(BadVolumeId, |h| {
        h.also[0] = 5;
        h.also[1] = 5;
    });
    mutated(BadVolumeId, |h| h.also[1] = 5);
    mutated(BadVolumeId, |h| {
        h.also[0] = 1;
        h.pieces[0].also = 1;
    });
}

fn set_of(h: &StripeHeader, p: &Piece) -> Vec<u32> {
    let mut v: Vec<u32> = h.volumes_of(p).collect();
    v.sort_unstable();
    v
}

#[test]
fn pieces_shared_by_many_volumes() {
    // RAID-5 4+1, 16-block strips, P at strip 2: data strips 0, 1, 3, 4.
    let mut b = HeaderBuilder::new(&params(RaidType::Raid5, 16, Some(2), None), &locs(5)).unwrap();
    let others: Vec<u32> = (2..=40).collect();
    let all: Vec<u32> = (1..=40).collect();
    // 39 others: 12 in the table, 27 in nine list entries; the run
    // crosses into strip 1, where one entry points back.
    b.append(50, 0, 10).unwrap();
    let a = b.append_for(1, &others, 1000, 12).unwrap();
    assert_eq!((a.data_offset, a.blocks), (10, 12));
    let lists = (others.len() - MAX_ALSO).div_ceil(LIST_IDS);
    assert_eq!(usize::from(b.header().nr_pieces), 1 + 1 + lists + 1);
    // Contiguous: extends the last piece; not contiguous: points back.
    b.append_for(1, &others, 1012, 2).unwrap();
    b.append_for(1, &others, 5000, 1).unwrap();
    // A trim for the same volumes points back too.
    b.append_trim_for(1, &others, 7000, 3).unwrap();
    // A smaller set that fits the table is named with bits again.
    b.append_for(1, &others[..5], 9000, 1).unwrap();
    let h = *b.header();
    let pieces: Vec<&Piece> = h.pieces().collect();
    assert_eq!(pieces.len(), 6);
    assert_eq!(h.entries().len(), 6 + lists);
    for p in &pieces[1..5] {
        assert_eq!(set_of(&h, p), all);
    }
    assert_eq!(pieces[2].also, SAME_AS_PREVIOUS);
    assert_eq!((pieces[2].host_lba, pieces[2].host_len), (1006, 8));
    assert_eq!(pieces[3].also, SAME_AS_PREVIOUS);
    assert!(pieces[4].is_trim() && pieces[4].also == SAME_AS_PREVIOUS);
    assert_eq!(set_of(&h, pieces[5]), (1..=6).collect::<Vec<u32>>());
    assert_eq!(set_of(&h, pieces[0]), vec![50]);
    let with_strip: Vec<usize> = h.pieces_with_strip().map(|(s, _)| s).collect();
    assert_eq!(with_strip, vec![0, 0, 1, 1, 1, 1]);
    assert_eq!(h.pieces_of(0).unwrap().len(), 2 + lists);
    let mut buf = [0u8; HEADER_BYTES];
    b.encode(&mut buf).unwrap();
    assert_eq!(StripeHeader::decode(&buf), Ok(h));

    // Laid out again over narrower strips, as a stripe closed early is:
    // the same data offsets, a split costing one entry.
    let mut again =
        HeaderBuilder::new(&params(RaidType::Raid5, 8, Some(2), None), &locs(5)).unwrap();
    for p in h.pieces() {
        let also: Vec<u32> = h.volumes_of(p).skip(1).collect();
        if p.is_trim() {
            again
                .append_trim_for(p.volume, &also, p.host_lba, u64::from(p.host_len))
                .unwrap();
        } else {
            let a = again
                .append_for(p.volume, &also, p.host_lba, u64::from(p.len))
                .unwrap();
            assert_eq!(a.blocks, u64::from(p.len));
        }
    }
    let g = *again.header();
    let mut by_lba: Vec<(u64, Vec<u32>)> =
        g.pieces().map(|p| (p.host_lba, set_of(&g, p))).collect();
    by_lba.sort();
    assert!(by_lba.iter().any(|(l, v)| *l == 1000 && *v == all));
    assert!(g.pieces().filter(|p| p.also == SAME_AS_PREVIOUS).count() >= 3);
    assert_eq!(g.entries().iter().filter(|e| e.is_list()).count(), lists);

    // Every volume of the table at most; ids valid and distinct.
    let mut w = HeaderBuilder::new(&params(RaidType::Raid5, 16, Some(2), None), &locs(5)).unwrap();
    let most: Vec<u32> = (2..=MAX_SHARERS as u32).collect();
    w.append_for(1, &most, 0, 1).unwrap();
    let p = w.header().pieces().next().copied().unwrap();
    assert_eq!(
        w.header()
            .volumes_of(w.header().pieces().next().unwrap())
            .count(),
        MAX_SHARERS
    );
    assert_eq!(p.volume, 1);
    let too_many: Vec<u32> = (2..=MAX_SHARERS as u32 + 1).collect();
    assert_eq!(w.append_for(1, &too_many, 10, 1), Err(BadVolumeId));
    assert_eq!(w.append_for(1, &[3, 70, 3], 10, 1), Err(BadVolumeId));

    // Kept slots: a wide piece that would take them does not fit.
    let mut k = HeaderBuilder::new(&params(RaidType::Raid5, 16, Some(2), None), &locs(5)).unwrap();
    for i in 0..(MAX_PIECES - 12) as u64 {
        k.append_trim(1, i * 2, 1).unwrap();
    }
    k.keep_free(4);
    assert_eq!(k.append_trim_for(100, &others, 0, 1), Err(DoesNotFit));
    k.append_trim(3, 0, 1).unwrap();
    assert_eq!(k.free_pieces(), 11);
}

#[test]
fn list_entry_rules() {
    let mut b = HeaderBuilder::new(&params(RaidType::Raid5, 16, Some(2), None), &locs(5)).unwrap();
    let others: Vec<u32> = (2..=20).collect();
    b.append_for(1, &others, 0, 20).unwrap();
    let h = *b.header();
    // Entries: piece, lists (7 ids: 3, 3, 1), then the pointing-back
    // piece in strip 1.
    assert!(h.entries()[1].is_list() && h.entries()[3].is_list());
    assert_eq!(h.entries()[3].listed(), [20, 0, 0]);
    assert_eq!(h.entries()[4].also, SAME_AS_PREVIOUS);
    let check = |want: FormatError, f: &dyn Fn(&mut StripeHeader)| {
        let mut m = h;
        f(&mut m);
        assert_eq!(m.validate(), Err(want), "{m:?}");
        let mut buf = [0u8; HEADER_BYTES];
        assert_eq!(m.encode(&mut buf), Err(want));
    };
    // A gap in a list entry, or an entry after a short one.
    check(BadVolumeId, &|m| m.pieces[1] = Piece::list([5, 0, 6]));
    check(BadVolumeId, &|m| m.pieces[2] = Piece::list([18, 19, 0]));
    check(BadVolumeId, &|m| m.pieces[1] = Piece::list([0, 0, 0]));
    // An id twice, across the table and the lists or within them.
    check(BadVolumeId, &|m| m.pieces[1] = Piece::list([2, 15, 16]));
    check(BadVolumeId, &|m| m.pieces[3] = Piece::list([1, 0, 0]));
    // A list entry's other bytes are zero.
    check(ReservedBits, &|m| m.pieces[1].len = 1);
    check(ReservedBits, &|m| m.pieces[1].also = 1);
    // Pointing back: not first, same volume, nothing else in `also`, no
    // list after it.
    check(BadVolumeId, &|m| m.pieces[4].volume = 9);
    check(BadVolumeId, &|m| m.pieces[4].also = SAME_AS_PREVIOUS | 1);
    check(BadVolumeId, &|m| m.pieces[0].also = SAME_AS_PREVIOUS);
    check(BadVolumeId, &|m| {
        // A list entry opening strip 1.
        m.strips[0].nr_pieces -= 1;
        m.strips[1].nr_pieces += 1;
    });
    check(BadVolumeId, &|m| {
        m.pieces[5] = Piece::list([30, 0, 0]);
        m.strips[1].nr_pieces += 1;
        m.nr_pieces += 1;
    });
}

/// The data areas `areas`, as `check_areas` asks for them.
fn of(areas: &[DataArea]) -> impl Fn(u8) -> Option<DataArea> + '_ {
    |m| areas.get(usize::from(m)).copied()
}

#[test]
fn strips_must_lie_in_the_members_data_areas() {
    let h = StripeHeader::decode(&encoded_header()).unwrap();
    // Strips at 256 + 1000 i on members 0, 3, 6, 9, 12, 17 blocks each;
    // the previous stripe at block 8192 of member 3.
    let area = DataArea {
        start: 256,
        end: 1 << 20,
    };
    let areas = vec![area; 13];
    assert_eq!(h.check_areas(of(&areas)), Ok(()));
    // A member the array does not have.
    assert_eq!(h.check_areas(of(&areas[..12])), Err(BadStripMember));
    assert_eq!(h.check_areas(of(&areas[..4])), Err(BadStripMember));
    // A strip that starts before, or runs past, its member's data area.
    let mut tight = areas.clone();
    tight[0].start = 257;
    assert_eq!(h.check_areas(of(&tight)), Err(OutOfRange));
    let mut tight = areas.clone();
    tight[12].end = 4256 + 16;
    assert_eq!(h.check_areas(of(&tight)), Err(OutOfRange));
    tight[12].end = 4256 + 17;
    assert_eq!(h.check_areas(of(&tight)), Ok(()));
    // The previous stripe outside member 3's area.
    let mut tight = areas.clone();
    tight[3].end = 8192;
    tight[3].start = 256;
    assert_eq!(h.check_areas(of(&tight)), Err(BadPrevious));
}

#[test]
fn a_strip_near_the_end_of_the_address_space_is_refused() {
    // A header that is valid in itself, with a strip whose byte address
    // does not fit a u64: the areas check is what keeps it from the
    // arithmetic that follows.
    let mut b = encoded_header();
    le::put_u64(&mut b, strip(4) + off::S_LBA, 1 << 60).unwrap();
    reseal(&mut b, off::CRC);
    let h = StripeHeader::decode(&b).unwrap();
    assert_eq!(h.strips()[4].lba.checked_mul(4096), None);
    let areas = vec![
        DataArea {
            start: 0,
            end: 1 << 40
        };
        13
    ];
    assert_eq!(h.check_areas(of(&areas)), Err(OutOfRange));
}
