// SPDX-License-Identifier: GPL-2.0

//! Arithmetic in GF(2^8) with the RAID-6 field polynomial.
//!
//! The field, generator and polynomial are those of Linux's lib/raid6 and of
//! most hardware RAID-6 engines: x^8 + x^4 + x^3 + x^2 + 1 (0x11d) with
//! generator g = 2. Using the well-known code means a stria Q strip can be
//! checked against any independent RAID-6 implementation.
//!
//! Tables are built at compile time: 512 bytes of powers (doubled so that a
//! sum of two logarithms indexes it without a modulo) and 256 of logarithms.

/// The field polynomial, including the x^8 term.
pub const POLY: u16 = 0x11d;

/// Generator powers g^i for i in 0..510; entries 255.. repeat 0..255.
static EXP: [u8; 512] = make_exp();

/// Discrete logarithms base g; `LOG[0]` is meaningless and never used.
static LOG: [u8; 256] = make_log();

// Runs at compile time only: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn make_exp() -> [u8; 512] {
    let mut t = [0u8; 512];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        t[i] = x as u8;
        t[i + 255] = x as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLY;
        }
        i += 1;
    }
    t
}

// Runs at compile time only: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn make_log() -> [u8; 256] {
    let exp = make_exp();
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        t[exp[i] as usize] = i as u8;
        i += 1;
    }
    t
}

fn exp(i: usize) -> u8 {
    // Callers pass a sum of two logarithms (at most 508) or a value reduced
    // modulo 255, so the fallback is unreachable.
    EXP.get(i).copied().unwrap_or(0)
}

fn log(a: u8) -> usize {
    usize::from(LOG.get(usize::from(a)).copied().unwrap_or(0))
}

/// g^k.
pub fn pow2(k: usize) -> u8 {
    exp(k % 255)
}

/// a * b.
pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        0
    } else {
        exp(log(a) + log(b))
    }
}

/// The multiplicative inverse of `a`; the inverse of 0 is taken to be 0.
pub fn inv(a: u8) -> u8 {
    if a == 0 {
        0
    } else {
        exp(255 - log(a))
    }
}

/// a / b, with division by zero yielding 0.
pub fn div(a: u8, b: u8) -> u8 {
    mul(a, inv(b))
}

/// A 256-entry table of `x * c` for every x: one lookup per byte when a
/// whole buffer is multiplied by the same constant.
pub fn mul_table(c: u8) -> [u8; 256] {
    let mut t = [0u8; 256];
    for (x, e) in (0u8..=255).zip(t.iter_mut()) {
        *e = mul(x, c);
    }
    t
}

/// Multiplies each of the eight bytes packed in `v` by g (= 2).
///
/// A byte whose top bit is set overflows out of the field and is reduced by
/// XOR with 0x1d; the reduction mask is built without branches so that the
/// compiler can keep the loop in vector registers.
#[inline(always)]
pub fn mul2_word(v: u64) -> u64 {
    let top = v & 0x8080_8080_8080_8080;
    // Each byte of `top >> 7` is 0 or 1, so the product never carries into
    // the next byte.
    let reduce = (top >> 7).wrapping_mul(0x1d);
    ((v << 1) & 0xfefe_fefe_fefe_fefe) ^ reduce
}

/// Multiplies one byte by g.
#[inline(always)]
pub fn mul2(b: u8) -> u8 {
    let r = if b & 0x80 != 0 { 0x1d } else { 0 };
    (b << 1) ^ r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Carry-less multiply and reduce, independent of the tables.
    fn slow_mul(mut a: u8, mut b: u8) -> u8 {
        let mut r = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                r ^= a;
            }
            a = mul2(a);
            b >>= 1;
        }
        r
    }

    #[test]
    fn tables_form_a_field() {
        // g generates the whole multiplicative group.
        let mut seen = [false; 256];
        for k in 0..255 {
            let v = pow2(k);
            assert!(!seen[usize::from(v)]);
            seen[usize::from(v)] = true;
        }
        assert!(!seen[0]);
        assert_eq!(pow2(8), 0x1d);
        assert_eq!(pow2(255), 1);
    }

    #[test]
    fn mul_matches_slow_mul_everywhere() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), slow_mul(a, b));
            }
            if a != 0 {
                assert_eq!(mul(a, inv(a)), 1);
                assert_eq!(div(mul(a, 0x53), 0x53), a);
            }
        }
        assert_eq!(inv(0), 0);
        let t = mul_table(0x8e);
        for x in 0..=255u8 {
            assert_eq!(t[usize::from(x)], mul(x, 0x8e));
        }
    }

    #[test]
    fn word_mul2_matches_bytes() {
        for seed in 0..2000u64 {
            let v = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (seed << 7);
            let w = mul2_word(v).to_le_bytes();
            for (i, b) in v.to_le_bytes().iter().enumerate() {
                assert_eq!(w[i], mul2(*b));
                assert_eq!(w[i], mul(*b, 2));
            }
        }
    }
}
