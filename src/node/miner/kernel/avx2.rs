//! 8-lane AVX2 kernel: eight nonces per pass, each lane doing both compressions. AVX2 has no
//! rotate, so each rotation is two shifts and an or. Only compiled for x86_64, only called
//! after `avx2` was detected.

use super::{HeaderJob, Kernel};
use std::arch::x86_64::*;

type V = __m256i;
const LANES: u64 = 8;

#[inline]
#[target_feature(enable = "avx2")]
fn splat(x: u32) -> V {
    _mm256_set1_epi32(x as i32)
}
#[inline]
#[target_feature(enable = "avx2")]
fn add(a: V, b: V) -> V {
    _mm256_add_epi32(a, b)
}
#[inline]
#[target_feature(enable = "avx2")]
fn xor(a: V, b: V) -> V {
    _mm256_xor_si256(a, b)
}

/// Rotate right by `$n` (a literal; `$m` = 32 - `$n`).
macro_rules! ror {
    ($x:expr, $n:literal, $m:literal) => {
        _mm256_or_si256(_mm256_srli_epi32::<$n>($x), _mm256_slli_epi32::<$m>($x))
    };
}

#[inline]
#[target_feature(enable = "avx2")]
fn bsig0(x: V) -> V {
    xor(xor(ror!(x, 2, 30), ror!(x, 13, 19)), ror!(x, 22, 10))
}
#[inline]
#[target_feature(enable = "avx2")]
fn bsig1(x: V) -> V {
    xor(xor(ror!(x, 6, 26), ror!(x, 11, 21)), ror!(x, 25, 7))
}
#[inline]
#[target_feature(enable = "avx2")]
fn ssig0(x: V) -> V {
    xor(
        xor(ror!(x, 7, 25), ror!(x, 18, 14)),
        _mm256_srli_epi32::<3>(x),
    )
}
#[inline]
#[target_feature(enable = "avx2")]
fn ssig1(x: V) -> V {
    xor(
        xor(ror!(x, 17, 15), ror!(x, 19, 13)),
        _mm256_srli_epi32::<10>(x),
    )
}
/// `e ? f : g` bitwise, as `((f ^ g) & e) ^ g`.
#[inline]
#[target_feature(enable = "avx2")]
fn ch(e: V, f: V, g: V) -> V {
    xor(_mm256_and_si256(xor(f, g), e), g)
}
/// Bitwise majority, as `((a ^ b) & (b ^ c)) ^ b`.
#[inline]
#[target_feature(enable = "avx2")]
fn maj(a: V, b: V, c: V) -> V {
    xor(_mm256_and_si256(xor(a, b), xor(b, c)), b)
}

super::lanes::lane_sha256d!("avx2", V);

/// Bit i set when nonce `base + i` (wrapping) has hash word 0 at or below the target's.
#[target_feature(enable = "avx2")]
fn candidates(p: &Pre, base: u64) -> u32 {
    let n: [u64; 8] = std::array::from_fn(|i| base.wrapping_add(i as u64));
    let lo = n.map(|n| (n as u32).swap_bytes() as i32);
    let hi = n.map(|n| ((n >> 32) as u32).swap_bytes() as i32);
    let w4 = _mm256_setr_epi32(lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7]);
    let w5 = _mm256_setr_epi32(hi[0], hi[1], hi[2], hi[3], hi[4], hi[5], hi[6], hi[7]);
    let h0 = hash_word0(p, w4, w5);
    // h0 <= t0 (unsigned) exactly when max(h0, t0) == t0.
    let t0 = splat(p.t0);
    let le = _mm256_cmpeq_epi32(_mm256_max_epu32(h0, t0), t0);
    _mm256_movemask_ps(_mm256_castsi256_ps(le)) as u32
}

#[target_feature(enable = "avx2")]
fn scan(job: &HeaderJob, start: u64, count: u64) -> Option<u64> {
    let p = Pre::new(job);
    super::scan_batches(job, start, count, LANES, |base| candidates(&p, base))
}

/// The AVX2 kernel. Only `super::select` makes one, after detecting `avx2`.
#[derive(Debug)]
pub(super) struct Avx2Kernel(());

impl Avx2Kernel {
    pub(super) fn new() -> Option<Avx2Kernel> {
        is_x86_feature_detected!("avx2").then_some(Avx2Kernel(()))
    }
}

impl Kernel for Avx2Kernel {
    fn name(&self) -> &'static str {
        "avx2"
    }
    fn scan(&self, job: &HeaderJob, start: u64, count: u64) -> Option<u64> {
        // SAFETY: an Avx2Kernel only exists after `avx2` was detected on this CPU.
        unsafe { scan(job, start, count) }
    }
}
