// SPDX-License-Identifier: GPL-2.0

//! Parity and checksum throughput against a plain copy of the same bytes.
//!
//! Stripes of 256 KiB strips: RAID-5 4+1 (P over four data strips) and
//! RAID-6 4+2 (P and Q). Throughput counts the data bytes (1 MiB per
//! stripe). After criterion's statistics a short summary prints decimal
//! GB/s for each case and its ratio to the copy, measured in the same run.

use std::hint::black_box;
use std::time::Duration;
use std::time::Instant;

use criterion::Criterion;
use criterion::Throughput;
use stria_core::crc;
use stria_core::parity;

const STRIP: usize = 256 * 1024;
const DATA_STRIPS: usize = 4;

fn data() -> Vec<Vec<u8>> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..DATA_STRIPS)
        .map(|_| {
            (0..STRIP)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

/// A named benchmark case owning its buffers.
type Case = (&'static str, Box<dyn FnMut()>);

/// The cases, each a closure over its own buffers.
fn cases() -> Vec<Case> {
    let d = data();
    let d2 = d.clone();
    let d3 = d.clone();
    let d4 = d.clone();
    let mut dst = vec![0u8; STRIP * DATA_STRIPS];
    let mut p = vec![0u8; STRIP];
    let mut p6 = vec![0u8; STRIP];
    let mut q6 = vec![0u8; STRIP];
    let memcpy = move || {
        for (o, s) in dst.chunks_exact_mut(STRIP).zip(&d) {
            o.copy_from_slice(s);
        }
        black_box(&dst);
    };
    let raid5 = move || {
        let refs: Vec<&[u8]> = d2.iter().map(|v| v.as_slice()).collect();
        parity::gen_p(&refs, &mut p).unwrap();
        black_box(&p);
    };
    let raid6 = move || {
        let refs: Vec<&[u8]> = d3.iter().map(|v| v.as_slice()).collect();
        parity::gen_pq(&refs, &mut p6, &mut q6).unwrap();
        black_box((&p6, &q6));
    };
    let crc = move || {
        let mut c = 0;
        for s in &d4 {
            c ^= crc::crc32c(s);
        }
        black_box(c);
    };
    vec![
        ("memcpy 4x256KiB", Box::new(memcpy)),
        ("raid5 4+1 gen_p", Box::new(raid5)),
        ("raid6 4+2 gen_pq", Box::new(raid6)),
        ("crc32c 4x256KiB", Box::new(crc)),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("stripe");
    g.throughput(Throughput::BytesDecimal((STRIP * DATA_STRIPS) as u64));
    for (name, mut f) in cases() {
        g.bench_function(name, |b| b.iter(&mut f));
    }
    g.finish();
}

/// Best-of-rounds throughput in decimal GB/s, each round about 0.2 s.
fn measure(f: &mut dyn FnMut()) -> f64 {
    let bytes = (STRIP * DATA_STRIPS) as f64;
    let mut best = 0f64;
    for _ in 0..10 {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < Duration::from_millis(200) {
            f();
            n += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        best = best.max(bytes * f64::from(n) / secs / 1e9);
    }
    best
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();

    println!("\nsummary (data bytes per second, best of 10 rounds of 0.2 s):");
    let mut base = None;
    for (name, mut f) in cases() {
        let gbs = measure(&mut f);
        let base = *base.get_or_insert(gbs);
        println!("  {name:<18} {gbs:7.2} GB/s  {:5.2}x memcpy", gbs / base);
    }
}
