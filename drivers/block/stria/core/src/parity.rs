// SPDX-License-Identifier: GPL-2.0

//! RAID parity: RAID-5 P (XOR) and RAID-6 P+Q over GF(2^8).
//!
//! Data strips are numbered 0..n in stripe order with the parity strips left
//! out; `P = D0 ^ D1 ^ ... ^ Dn-1` and `Q = g^0*D0 ^ g^1*D1 ^ ... ^
//! g^(n-1)*Dn-1` in the field of [`super::gf`], which is the code of Linux's
//! lib/raid6. Q is evaluated by Horner's rule from the highest data strip
//! down, so only multiplication by g is needed on the hot path, and that is
//! done eight bytes at a time in a `u64`.
//!
//! Nothing here allocates: callers pass every buffer, strips as slices of
//! equal length. Work is done in segments of [`SEGMENT`] bytes across all
//! strips so that the P and Q accumulators stay in the first-level cache
//! while the data streams past once.

use super::error::FormatError;
use super::error::Result;
use super::gf;

/// Most strips a stripe can have (one per member).
pub const MAX_STRIPS: usize = super::geometry::MAX_STRIPS;

/// Bytes processed per strip before moving on to the next strip.
pub const SEGMENT: usize = 1024;

const WORD: usize = 8;

#[inline(always)]
fn load(c: &[u8]) -> u64 {
    // Callers pass chunks_exact(8) items; the default is never used.
    u64::from_ne_bytes(c.try_into().unwrap_or_default())
}

#[inline(always)]
fn store(c: &mut [u8], v: u64) {
    // One eight-byte store; iterating the array instead costs a call per
    // byte where the compiler does not inline core's iterator (the kernel
    // builds for size).
    if let Ok(w) = <&mut [u8; WORD]>::try_from(c) {
        *w = v.to_ne_bytes();
    }
}

/// `dst ^= src`, word-wide. Lengths must match (checked by callers).
fn xor_into(dst: &mut [u8], src: &[u8]) {
    let mut d = dst.chunks_exact_mut(WORD);
    let mut s = src.chunks_exact(WORD);
    for (dw, sw) in (&mut d).zip(&mut s) {
        store(dw, load(dw) ^ load(sw));
    }
    for (db, sb) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *db ^= *sb;
    }
}

/// `q = q * g ^ src`, word-wide.
fn mul2_xor_into(q: &mut [u8], src: &[u8]) {
    let mut d = q.chunks_exact_mut(WORD);
    let mut s = src.chunks_exact(WORD);
    for (dw, sw) in (&mut d).zip(&mut s) {
        store(dw, gf::mul2_word(load(dw)) ^ load(sw));
    }
    for (db, sb) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *db = gf::mul2(*db) ^ *sb;
    }
}

/// `q = q * g`, word-wide.
fn mul2_in_place(q: &mut [u8]) {
    let mut d = q.chunks_exact_mut(WORD);
    for dw in &mut d {
        store(dw, gf::mul2_word(load(dw)));
    }
    for db in d.into_remainder() {
        *db = gf::mul2(*db);
    }
}

/// `p ^= src; q = q * g ^ src` in one pass over `src`.
fn pq_step(p: &mut [u8], q: &mut [u8], src: &[u8]) {
    let mut pc = p.chunks_exact_mut(WORD);
    let mut qc = q.chunks_exact_mut(WORD);
    let mut sc = src.chunks_exact(WORD);
    for ((pw, qw), sw) in (&mut pc).zip(&mut qc).zip(&mut sc) {
        let s = load(sw);
        store(pw, load(pw) ^ s);
        store(qw, gf::mul2_word(load(qw)) ^ s);
    }
    let pr = pc.into_remainder().iter_mut();
    let qr = qc.into_remainder().iter_mut();
    for ((pb, qb), sb) in pr.zip(qr).zip(sc.remainder()) {
        *pb ^= *sb;
        *qb = gf::mul2(*qb) ^ *sb;
    }
}

/// Copies `src` into `dst`; both have the segment's length.
fn copy(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// The segment of `strip` at `off` with the length of `like`.
fn seg<'a>(strip: &'a [u8], off: usize, like: &[u8]) -> Result<&'a [u8]> {
    let end = off.checked_add(like.len()).ok_or(FormatError::Overflow)?;
    strip.get(off..end).ok_or(FormatError::LengthMismatch)
}

fn check_lengths(len: usize, strips: &[&[u8]]) -> Result {
    if strips.iter().all(|s| s.len() == len) {
        Ok(())
    } else {
        Err(FormatError::LengthMismatch)
    }
}

fn check_data(data: &[&[u8]], min: usize) -> Result {
    if data.len() < min || data.len() > MAX_STRIPS {
        return Err(FormatError::BadStripSet);
    }
    Ok(())
}

/// Computes the RAID-5 parity `p` of `data`.
///
/// `data` holds 1..=31 strips of `p.len()` bytes each, in data order.
pub fn gen_p(data: &[&[u8]], p: &mut [u8]) -> Result {
    check_data(data, 1)?;
    check_lengths(p.len(), data)?;
    let (first, rest) = data.split_first().ok_or(FormatError::BadStripSet)?;
    for (i, ps) in p.chunks_mut(SEGMENT).enumerate() {
        let off = i.checked_mul(SEGMENT).ok_or(FormatError::Overflow)?;
        copy(ps, seg(first, off, ps)?);
        for d in rest {
            xor_into(ps, seg(d, off, ps)?);
        }
    }
    Ok(())
}

/// Computes the RAID-6 syndromes `p` and `q` of `data`.
///
/// `data` holds 1..=30 strips of `p.len()` bytes each, in data order: the
/// strip at position k is multiplied by g^k in Q.
pub fn gen_pq(data: &[&[u8]], p: &mut [u8], q: &mut [u8]) -> Result {
    check_data(data, 1)?;
    if data.len() > MAX_STRIPS - 2 {
        return Err(FormatError::BadStripSet);
    }
    if q.len() != p.len() {
        return Err(FormatError::LengthMismatch);
    }
    check_lengths(p.len(), data)?;
    let (top, rest) = data.split_last().ok_or(FormatError::BadStripSet)?;
    for (i, (ps, qs)) in p.chunks_mut(SEGMENT).zip(q.chunks_mut(SEGMENT)).enumerate() {
        let off = i.checked_mul(SEGMENT).ok_or(FormatError::Overflow)?;
        let s = seg(top, off, ps)?;
        copy(ps, s);
        copy(qs, s);
        for d in rest.iter().rev() {
            pq_step(ps, qs, seg(d, off, ps)?);
        }
    }
    Ok(())
}

/// Q alone of `data`, treating the data strips whose index is in `skip` as
/// zero. The skipped entries' buffers are not read.
fn partial_q(data: &[&[u8]], skip: &[usize], q: &mut [u8]) -> Result {
    for (i, qs) in q.chunks_mut(SEGMENT).enumerate() {
        let off = i.checked_mul(SEGMENT).ok_or(FormatError::Overflow)?;
        qs.fill(0);
        for (k, d) in data.iter().enumerate().rev() {
            if skip.contains(&k) {
                mul2_in_place(qs);
            } else {
                mul2_xor_into(qs, seg(d, off, qs)?);
            }
        }
    }
    Ok(())
}

/// XOR of `data` except the entries in `skip`, plus `extra`, into `out`.
fn partial_p(data: &[&[u8]], skip: &[usize], extra: &[u8], out: &mut [u8]) -> Result {
    copy(out, extra);
    for (k, d) in data.iter().enumerate() {
        if !skip.contains(&k) {
            xor_into(out, d);
        }
    }
    Ok(())
}

/// Stripe-ordered strips split into roles without allocating.
struct Split<'a> {
    /// Present strips by data index; missing ones are empty.
    data: [&'a [u8]; MAX_STRIPS],
    nr_data: usize,
    p: Option<&'a [u8]>,
    q: Option<&'a [u8]>,
}

/// What a missing strip was.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Data(usize),
    P,
    Q,
}

fn role(i: usize, p_index: usize, q_index: Option<usize>) -> Role {
    if i == p_index {
        Role::P
    } else if Some(i) == q_index {
        Role::Q
    } else {
        let before = usize::from(p_index < i) + usize::from(q_index.is_some_and(|q| q < i));
        Role::Data(i - before)
    }
}

/// Checks a stripe call's strips and parity positions, returning the
/// common strip length.
fn check_stripe(
    strips: &[&mut [u8]],
    p_index: usize,
    q_index: Option<usize>,
    min: usize,
) -> Result<usize> {
    let n = strips.len();
    if n < min || n > MAX_STRIPS {
        return Err(FormatError::BadStripSet);
    }
    if p_index >= n || q_index.is_some_and(|q| q >= n || q == p_index) {
        return Err(FormatError::BadParityIndex);
    }
    let len = strips.first().map_or(0, |s| s.len());
    if strips.iter().any(|s| s.len() != len) {
        return Err(FormatError::LengthMismatch);
    }
    Ok(len)
}

fn check_missing(n: usize, missing: &[usize], max: usize) -> Result {
    if missing.len() > max {
        return Err(FormatError::BadMissing);
    }
    for (i, &m) in missing.iter().enumerate() {
        if m >= n || missing.iter().skip(i + 1).any(|&o| o == m) {
            return Err(FormatError::BadMissing);
        }
    }
    Ok(())
}

/// Takes the strips named in `missing` out of `strips` as writable buffers
/// and returns the rest split by role.
fn split<'a>(
    strips: &'a mut [&mut [u8]],
    p_index: usize,
    q_index: Option<usize>,
    missing: &[usize],
    out: &mut [Option<(Role, &'a mut [u8])>; 2],
) -> Split<'a> {
    let mut s = Split {
        data: [&[]; MAX_STRIPS],
        nr_data: 0,
        p: None,
        q: None,
    };
    let mut taken = 0;
    for (i, strip) in strips.iter_mut().enumerate() {
        let r = role(i, p_index, q_index);
        if let Role::Data(k) = r {
            s.nr_data = s.nr_data.max(k + 1);
        }
        if missing.contains(&i) {
            if let Some(slot) = out.get_mut(taken) {
                *slot = Some((r, &mut **strip));
                taken += 1;
            }
            continue;
        }
        let buf: &'a [u8] = strip;
        match r {
            Role::P => s.p = Some(buf),
            Role::Q => s.q = Some(buf),
            Role::Data(k) => {
                if let Some(d) = s.data.get_mut(k) {
                    *d = buf;
                }
            }
        }
    }
    s
}

/// Fills in the RAID-5 parity strip of a stripe from its data strips.
///
/// `strips` is the whole stripe in order (2..=32 strips of equal length);
/// the strip at `p_index` is overwritten.
pub fn raid5_gen(strips: &mut [&mut [u8]], p_index: usize) -> Result {
    check_stripe(strips, p_index, None, 2)?;
    let mut out = [None, None];
    let s = split(strips, p_index, None, &[p_index], &mut out);
    let [Some((_, p)), None] = out else {
        return Err(FormatError::BadParityIndex);
    };
    gen_p(s.data.get(..s.nr_data).unwrap_or(&[]), p)
}

/// Fills in the P and Q strips of a RAID-6 stripe from its data strips.
///
/// `strips` is the whole stripe in order (3..=32 strips of equal length);
/// the strips at `p_index` and `q_index` are overwritten.
pub fn raid6_gen(strips: &mut [&mut [u8]], p_index: usize, q_index: usize) -> Result {
    check_stripe(strips, p_index, Some(q_index), 3)?;
    let mut out = [None, None];
    let s = split(
        strips,
        p_index,
        Some(q_index),
        &[p_index, q_index],
        &mut out,
    );
    let [Some((ra, a)), Some((_, b))] = out else {
        return Err(FormatError::BadParityIndex);
    };
    let (p, q) = if ra == Role::P { (a, b) } else { (b, a) };
    gen_pq(s.data.get(..s.nr_data).unwrap_or(&[]), p, q)
}

/// Rebuilds strip `missing` of a RAID-5 stripe from all the others.
///
/// Parity and data strips are alike under XOR, so the parity position is
/// not needed.
pub fn raid5_recover(strips: &mut [&mut [u8]], missing: usize) -> Result {
    check_stripe(strips, 0, None, 2)?;
    check_missing(strips.len(), &[missing], 1)?;
    let mut out = [None, None];
    // Treat the missing strip as the parity of the others.
    let s = split(strips, missing, None, &[missing], &mut out);
    let [Some((_, m)), None] = out else {
        return Err(FormatError::BadMissing);
    };
    gen_p(s.data.get(..s.nr_data).unwrap_or(&[]), m)
}

/// Rebuilds up to two lost strips of a RAID-6 stripe in place.
///
/// `strips` is the whole stripe in order; `missing` names 0, 1 or 2 strip
/// positions whose buffers hold garbage on entry and the rebuilt contents on
/// return. Any combination works: one or two data strips, data and P, data
/// and Q, P and Q.
pub fn raid6_recover(
    strips: &mut [&mut [u8]],
    p_index: usize,
    q_index: usize,
    missing: &[usize],
) -> Result {
    check_stripe(strips, p_index, Some(q_index), 3)?;
    check_missing(strips.len(), missing, 2)?;
    let mut out = [None, None];
    let s = split(strips, p_index, Some(q_index), missing, &mut out);
    let nd = s.nr_data;
    let mut data = s.data;
    match out {
        [None, None] => Ok(()),
        [Some((Role::P, p)), Some((Role::Q, q))] | [Some((Role::Q, q)), Some((Role::P, p))] => {
            gen_pq(data.get(..nd).unwrap_or(&[]), p, q)
        }
        [Some((Role::P, p)), None] => gen_p(data.get(..nd).unwrap_or(&[]), p),
        [Some((Role::Q, q)), None] => partial_q(data.get(..nd).unwrap_or(&[]), &[], q),
        [Some((Role::Data(x), dx)), None] => {
            let pp = s.p.ok_or(FormatError::BadMissing)?;
            partial_p(data.get(..nd).unwrap_or(&[]), &[x], pp, dx)
        }
        [Some((Role::Data(x), dx)), Some((Role::Q, q))]
        | [Some((Role::Q, q)), Some((Role::Data(x), dx))] => {
            let pp = s.p.ok_or(FormatError::BadMissing)?;
            partial_p(data.get(..nd).unwrap_or(&[]), &[x], pp, dx)?;
            let slot = data.get_mut(x).ok_or(FormatError::BadMissing)?;
            *slot = &*dx;
            partial_q(data.get(..nd).unwrap_or(&[]), &[], q)
        }
        [Some((Role::Data(x), dx)), Some((Role::P, p))]
        | [Some((Role::P, p)), Some((Role::Data(x), dx))] => {
            let qq = s.q.ok_or(FormatError::BadMissing)?;
            // Q ^ (Q of the others) = g^x * Dx.
            partial_q(data.get(..nd).unwrap_or(&[]), &[x], dx)?;
            xor_into(dx, qq);
            let t = gf::mul_table(gf::inv(gf::pow2(x)));
            for b in dx.iter_mut() {
                *b = t.get(usize::from(*b)).copied().unwrap_or(0);
            }
            let slot = data.get_mut(x).ok_or(FormatError::BadMissing)?;
            *slot = &*dx;
            gen_p(data.get(..nd).unwrap_or(&[]), p)
        }
        [Some((Role::Data(x), dx)), Some((Role::Data(y), dy))] => {
            let pp = s.p.ok_or(FormatError::BadMissing)?;
            let qq = s.q.ok_or(FormatError::BadMissing)?;
            let d = data.get(..nd).unwrap_or(&[]);
            // dx <- Dx ^ Dy, dy <- g^x*Dx ^ g^y*Dy.
            partial_p(d, &[x, y], pp, dx)?;
            partial_q(d, &[x, y], dy)?;
            xor_into(dy, qq);
            recover_two_data(x, y, dx, dy);
            Ok(())
        }
        _ => Err(FormatError::BadMissing),
    }
}

/// Solves `pxy = Dx ^ Dy`, `qxy = g^x*Dx ^ g^y*Dy` for Dx and Dy in place.
///
/// Dx = A*pxy ^ B*qxy with A = g^(y-x) / (g^(y-x) ^ 1) and
/// B = g^-x / (g^(y-x) ^ 1); then Dy = pxy ^ Dx. x != y makes the
/// denominator non-zero.
fn recover_two_data(x: usize, y: usize, pxy: &mut [u8], qxy: &mut [u8]) {
    let gyx = gf::pow2((y % 255 + 255 - x % 255) % 255);
    let denom = gf::inv(gyx ^ 1);
    let a = gf::mul_table(gf::mul(gyx, denom));
    let b = gf::mul_table(gf::mul(gf::inv(gf::pow2(x)), denom));
    for (pb, qb) in pxy.iter_mut().zip(qxy.iter_mut()) {
        let ax = a.get(usize::from(*pb)).copied().unwrap_or(0);
        let bx = b.get(usize::from(*qb)).copied().unwrap_or(0);
        let dx = ax ^ bx;
        *qb = *pb ^ dx;
        *pb = dx;
    }
}

/// True when the XOR of all strips of a RAID-5 stripe is zero, i.e. its
/// parity is consistent. Uses a small stack buffer instead of scratch.
pub fn raid5_verify(strips: &[&[u8]]) -> Result<bool> {
    if strips.len() < 2 || strips.len() > MAX_STRIPS {
        return Err(FormatError::BadStripSet);
    }
    let len = strips.first().map_or(0, |s| s.len());
    check_lengths(len, strips)?;
    let mut acc = [0u8; 256];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(acc.len());
        let a = acc.get_mut(..n).ok_or(FormatError::Overflow)?;
        a.fill(0);
        for s in strips {
            xor_into(a, seg(s, off, a)?);
        }
        if a.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        off += n;
    }
    Ok(true)
}

/// True when P and Q of a RAID-6 stripe match its data strips.
pub fn raid6_verify(strips: &[&[u8]], p_index: usize, q_index: usize) -> Result<bool> {
    let n = strips.len();
    if !(3..=MAX_STRIPS).contains(&n) {
        return Err(FormatError::BadStripSet);
    }
    if p_index >= n || q_index >= n || p_index == q_index {
        return Err(FormatError::BadParityIndex);
    }
    let len = strips.first().map_or(0, |s| s.len());
    check_lengths(len, strips)?;
    let mut data: [&[u8]; MAX_STRIPS] = [&[]; MAX_STRIPS];
    let mut nd = 0;
    for (i, s) in strips.iter().enumerate() {
        if let Role::Data(k) = role(i, p_index, Some(q_index)) {
            if let Some(d) = data.get_mut(k) {
                *d = s;
                nd = nd.max(k + 1);
            }
        }
    }
    let pp = strips.get(p_index).ok_or(FormatError::BadParityIndex)?;
    let qq = strips.get(q_index).ok_or(FormatError::BadParityIndex)?;
    let data = data.get(..nd).ok_or(FormatError::BadStripSet)?;
    let mut pbuf = [0u8; 256];
    let mut qbuf = [0u8; 256];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(pbuf.len());
        let pa = pbuf.get_mut(..n).ok_or(FormatError::Overflow)?;
        let qa = qbuf.get_mut(..n).ok_or(FormatError::Overflow)?;
        pa.fill(0);
        qa.fill(0);
        for d in data.iter().rev() {
            pq_step(pa, qa, seg(d, off, pa)?);
        }
        if pa != seg(pp, off, pa)? || qa != seg(qq, off, qa)? {
            return Ok(false);
        }
        off += n;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::vectors;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn bytes_q(data: &[&[u8]]) -> Vec<u8> {
        let len = data[0].len();
        let mut q = vec![0u8; len];
        for (k, d) in data.iter().enumerate() {
            let c = gf::pow2(k);
            for i in 0..len {
                q[i] ^= gf::mul(d[i], c);
            }
        }
        q
    }

    fn filled(seed: u32, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
            .map(|b| b.rotate_left(seed % 8))
            .collect()
    }

    #[test]
    fn known_answer_pq() {
        let v = &vectors::RAID6;
        let mut p = [0u8; 8];
        let mut q = [0u8; 8];
        gen_pq(&v.data, &mut p, &mut q).unwrap();
        assert_eq!(p, v.p);
        assert_eq!(q, v.q);
        gen_p(&v.data, &mut p).unwrap();
        assert_eq!(p, v.p);
    }

    #[test]
    fn pq_matches_bytewise_definition_odd_lengths() {
        for len in [0usize, 1, 7, 8, 9, 1023, 1024, 1025, 3000] {
            let d: Vec<Vec<u8>> = (0..5).map(|s| filled(s, len)).collect();
            let refs: Vec<&[u8]> = d.iter().map(|v| v.as_slice()).collect();
            let mut p = vec![0u8; len];
            let mut q = vec![0u8; len];
            gen_pq(&refs, &mut p, &mut q).unwrap();
            assert_eq!(q, bytes_q(&refs));
            let mut x = vec![0u8; len];
            for r in &refs {
                for i in 0..len {
                    x[i] ^= r[i];
                }
            }
            assert_eq!(p, x);
        }
    }

    #[test]
    fn argument_errors() {
        let a = [0u8; 16];
        let b = [0u8; 8];
        let mut p = [0u8; 16];
        let mut q = [0u8; 16];
        assert_eq!(gen_p(&[], &mut p), Err(FormatError::BadStripSet));
        assert_eq!(gen_p(&[&a, &b], &mut p), Err(FormatError::LengthMismatch));
        assert_eq!(
            gen_pq(&[&a], &mut p, &mut q[..8]),
            Err(FormatError::LengthMismatch)
        );
        let many = [&a[..]; 31];
        assert_eq!(gen_pq(&many, &mut p, &mut q), Err(FormatError::BadStripSet));
        assert_eq!(gen_p(&many, &mut p), Ok(()));
        let many = [&a[..]; 33];
        assert_eq!(gen_p(&many, &mut p), Err(FormatError::BadStripSet));

        let mut s0 = [0u8; 16];
        let mut s1 = [0u8; 16];
        let mut s2 = [0u8; 8];
        let mut st: [&mut [u8]; 3] = [&mut s0, &mut s1, &mut s2];
        assert_eq!(raid5_gen(&mut st, 0), Err(FormatError::LengthMismatch));
        let mut s2 = [0u8; 16];
        let mut st: [&mut [u8]; 3] = [&mut s0, &mut s1, &mut s2];
        assert_eq!(raid5_gen(&mut st, 3), Err(FormatError::BadParityIndex));
        assert_eq!(raid6_gen(&mut st, 1, 1), Err(FormatError::BadParityIndex));
        assert_eq!(raid6_gen(&mut st, 1, 3), Err(FormatError::BadParityIndex));
        assert_eq!(raid5_recover(&mut st, 3), Err(FormatError::BadMissing));
        assert_eq!(
            raid6_recover(&mut st, 0, 1, &[2, 2]),
            Err(FormatError::BadMissing)
        );
        assert_eq!(
            raid6_recover(&mut st, 0, 1, &[0, 1, 2]),
            Err(FormatError::BadMissing)
        );
        assert_eq!(raid6_recover(&mut st, 0, 1, &[]), Ok(()));
        assert_eq!(
            raid6_recover(&mut st[..2], 0, 1, &[0]),
            Err(FormatError::BadStripSet)
        );
        assert_eq!(raid5_verify(&[&a]), Err(FormatError::BadStripSet));
        assert_eq!(raid6_verify(&[&a, &a], 0, 1), Err(FormatError::BadStripSet));
        assert_eq!(
            raid6_verify(&[&a, &a, &a], 0, 0),
            Err(FormatError::BadParityIndex)
        );
    }

    fn stripe(n: usize, len: usize, seed: u32) -> Vec<Vec<u8>> {
        (0..n).map(|i| filled(seed + i as u32, len)).collect()
    }

    #[test]
    fn raid5_every_single_loss() {
        for n in 2..7 {
            for p_index in 0..n {
                let mut s = stripe(n, 1500, 9);
                let mut refs: Vec<&mut [u8]> = s.iter_mut().map(|v| v.as_mut_slice()).collect();
                raid5_gen(&mut refs, p_index).unwrap();
                let good = s.clone();
                let shared: Vec<&[u8]> = good.iter().map(|v| v.as_slice()).collect();
                assert!(raid5_verify(&shared).unwrap());
                for m in 0..n {
                    let mut s = good.clone();
                    s[m].fill(0xee);
                    let mut refs: Vec<&mut [u8]> = s.iter_mut().map(|v| v.as_mut_slice()).collect();
                    raid5_recover(&mut refs, m).unwrap();
                    assert_eq!(s, good);
                }
                let mut bad = good.clone();
                bad[0][1499] ^= 1;
                let shared: Vec<&[u8]> = bad.iter().map(|v| v.as_slice()).collect();
                assert!(!raid5_verify(&shared).unwrap());
            }
        }
    }

    #[test]
    fn raid6_every_double_loss() {
        for n in 3..8 {
            for p_index in 0..n {
                let q_index = (p_index + 1 + (n % 2)) % n;
                if q_index == p_index {
                    continue;
                }
                let mut s = stripe(n, 1100, 3);
                let mut refs: Vec<&mut [u8]> = s.iter_mut().map(|v| v.as_mut_slice()).collect();
                raid6_gen(&mut refs, p_index, q_index).unwrap();
                let good = s.clone();
                let shared: Vec<&[u8]> = good.iter().map(|v| v.as_slice()).collect();
                assert!(raid6_verify(&shared, p_index, q_index).unwrap());
                for a in 0..n {
                    for b in a..n {
                        let mut s = good.clone();
                        s[a].fill(0x11);
                        s[b].fill(0x77);
                        let missing: Vec<usize> = if a == b { vec![a] } else { vec![b, a] };
                        let mut refs: Vec<&mut [u8]> =
                            s.iter_mut().map(|v| v.as_mut_slice()).collect();
                        raid6_recover(&mut refs, p_index, q_index, &missing).unwrap();
                        assert_eq!(s, good, "n={n} p={p_index} q={q_index} lost {a},{b}");
                    }
                }
                let mut bad = good.clone();
                bad[q_index][7] ^= 0x40;
                let shared: Vec<&[u8]> = bad.iter().map(|v| v.as_slice()).collect();
                assert!(!raid6_verify(&shared, p_index, q_index).unwrap());
            }
        }
    }
}
