// SPDX-License-Identifier: GPL-2.0

//! RAID-5/6 generation and recovery with fuzzer-chosen widths, lengths,
//! parity positions, lost strips and contents, valid or not.
//!
//! Input: [n, len, p, q, nmissing, m0, m1, m2] then strip contents.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stria_core::parity;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let n = usize::from(data[0] % 36);
    let len = usize::from(data[1]) * 3;
    let (p, q) = (usize::from(data[2] % 36), usize::from(data[3] % 36));
    let missing: Vec<usize> = data[5..8]
        .iter()
        .take(usize::from(data[4] % 4))
        .map(|&m| usize::from(m % 36))
        .collect();
    let mut fill = data[8..].iter().copied().cycle();
    let mut strips: Vec<Vec<u8>> = (0..n)
        .map(|_| (0..len).map(|_| fill.next().unwrap_or(0)).collect())
        .collect();
    // An odd length on one strip now and then exercises LengthMismatch.
    if data[1] & 1 == 1 && n > 1 {
        strips[n - 1].push(0);
    }
    let equal = strips.iter().all(|s| s.len() == len);

    let mut five = strips.clone();
    let mut refs: Vec<&mut [u8]> = five.iter_mut().map(|v| v.as_mut_slice()).collect();
    if parity::raid5_gen(&mut refs, p).is_ok() {
        let good: Vec<Vec<u8>> = refs.iter().map(|s| s.to_vec()).collect();
        if let Some(&m) = missing.first() {
            if m < n {
                refs[m].fill(0xaa);
                parity::raid5_recover(&mut refs, m).unwrap();
                let got: Vec<Vec<u8>> = refs.iter().map(|s| s.to_vec()).collect();
                assert_eq!(got, good);
            }
        }
        let shared: Vec<&[u8]> = good.iter().map(|v| v.as_slice()).collect();
        assert!(parity::raid5_verify(&shared).unwrap());
    } else {
        assert!(!equal || p >= n || n < 2 || n > 32);
    }

    let mut six = strips.clone();
    let mut refs: Vec<&mut [u8]> = six.iter_mut().map(|v| v.as_mut_slice()).collect();
    if parity::raid6_gen(&mut refs, p, q).is_ok() {
        let good: Vec<Vec<u8>> = refs.iter().map(|s| s.to_vec()).collect();
        let mut lost = missing.clone();
        lost.truncate(2);
        let valid = lost.iter().all(|&m| m < n) && !(lost.len() == 2 && lost[0] == lost[1]);
        for &m in &lost {
            if m < n {
                refs[m].fill(0x55);
            }
        }
        let r = parity::raid6_recover(&mut refs, p, q, &lost);
        if valid {
            r.unwrap();
            let got: Vec<Vec<u8>> = refs.iter().map(|s| s.to_vec()).collect();
            assert_eq!(got, good);
        } else {
            assert!(r.is_err());
        }
        let shared: Vec<&[u8]> = good.iter().map(|v| v.as_slice()).collect();
        assert!(parity::raid6_verify(&shared, p, q).unwrap());
    }
    // Arbitrary (possibly invalid) calls must fail cleanly, never panic.
    let mut refs: Vec<&mut [u8]> = strips.iter_mut().map(|v| v.as_mut_slice()).collect();
    let _ = parity::raid6_recover(&mut refs, p, q, &missing);
    let _ = parity::raid5_recover(&mut refs, p);
    let shared: Vec<&[u8]> = strips.iter().map(|v| v.as_slice()).collect();
    let _ = parity::raid6_verify(&shared, p, q);
    let _ = parity::raid5_verify(&shared);
    if let Some((first, rest)) = shared.split_first() {
        let mut a = first.to_vec();
        let mut b = first.to_vec();
        let _ = parity::gen_p(rest, &mut a);
        let _ = parity::gen_pq(rest, &mut a, &mut b);
    }
});
