//! Helpers shared by the benches (each bench includes this file with `mod support;`; the
//! codec vector test includes it too, for the generator).

#![allow(dead_code)]

/// Nanoseconds this thread has spent on a CPU (Linux `/proc/thread-self/schedstat`), so
/// figures can be read on a shared, overloaded machine; `None` elsewhere.
pub fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// v1's `meta.lcg32` input generator: x_{n+1} = 1103515245 x_n + 12345 mod 2^32, each byte
/// the top 8 bits of x_{n+1} (incompressible data the vectors and benches share).
pub fn lcg32(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 24) as u8
        })
        .collect()
}
