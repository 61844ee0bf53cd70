//! 16-lane AVX-512 kernel: sixteen nonces per pass, each lane doing both compressions.
//! Rotations are single `vprord`s and the three-input boolean functions single
//! `vpternlogd`s. Only compiled for x86_64, only called after `avx512f` was detected.

use super::{HeaderJob, Kernel};
use std::arch::x86_64::*;

type V = __m512i;
const LANES: u64 = 16;

#[inline]
#[target_feature(enable = "avx512f")]
fn splat(x: u32) -> V {
    _mm512_set1_epi32(x as i32)
}
#[inline]
#[target_feature(enable = "avx512f")]
fn add(a: V, b: V) -> V {
    _mm512_add_epi32(a, b)
}
#[inline]
#[target_feature(enable = "avx512f")]
fn xor3(a: V, b: V, c: V) -> V {
    _mm512_ternarylogic_epi32::<0x96>(a, b, c)
}
#[inline]
#[target_feature(enable = "avx512f")]
fn bsig0(x: V) -> V {
    xor3(
        _mm512_ror_epi32::<2>(x),
        _mm512_ror_epi32::<13>(x),
        _mm512_ror_epi32::<22>(x),
    )
}
#[inline]
#[target_feature(enable = "avx512f")]
fn bsig1(x: V) -> V {
    xor3(
        _mm512_ror_epi32::<6>(x),
        _mm512_ror_epi32::<11>(x),
        _mm512_ror_epi32::<25>(x),
    )
}
#[inline]
#[target_feature(enable = "avx512f")]
fn ssig0(x: V) -> V {
    xor3(
        _mm512_ror_epi32::<7>(x),
        _mm512_ror_epi32::<18>(x),
        _mm512_srli_epi32::<3>(x),
    )
}
#[inline]
#[target_feature(enable = "avx512f")]
fn ssig1(x: V) -> V {
    xor3(
        _mm512_ror_epi32::<17>(x),
        _mm512_ror_epi32::<19>(x),
        _mm512_srli_epi32::<10>(x),
    )
}
/// `e ? f : g` bitwise.
#[inline]
#[target_feature(enable = "avx512f")]
fn ch(e: V, f: V, g: V) -> V {
    _mm512_ternarylogic_epi32::<0xCA>(e, f, g)
}
/// Bitwise majority.
#[inline]
#[target_feature(enable = "avx512f")]
fn maj(a: V, b: V, c: V) -> V {
    _mm512_ternarylogic_epi32::<0xE8>(a, b, c)
}

super::lanes::lane_sha256d!("avx512f", V);

/// Bit i set when nonce `base + i` (wrapping) has hash word 0 at or below the target's.
#[target_feature(enable = "avx512f")]
fn candidates(p: &Pre, base: u64) -> u32 {
    let n: [u64; 16] = std::array::from_fn(|i| base.wrapping_add(i as u64));
    let lo = n.map(|n| (n as u32).swap_bytes() as i32);
    let hi = n.map(|n| ((n >> 32) as u32).swap_bytes() as i32);
    let w4 = _mm512_setr_epi32(
        lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7], lo[8], lo[9], lo[10], lo[11],
        lo[12], lo[13], lo[14], lo[15],
    );
    let w5 = _mm512_setr_epi32(
        hi[0], hi[1], hi[2], hi[3], hi[4], hi[5], hi[6], hi[7], hi[8], hi[9], hi[10], hi[11],
        hi[12], hi[13], hi[14], hi[15],
    );
    let h0 = hash_word0(p, w4, w5);
    u32::from(_mm512_cmple_epu32_mask(h0, splat(p.t0)))
}

#[target_feature(enable = "avx512f")]
fn scan(job: &HeaderJob, start: u64, count: u64) -> Option<u64> {
    let p = Pre::new(job);
    super::scan_batches(job, start, count, LANES, |base| candidates(&p, base))
}

/// The AVX-512 kernel. Only `super::select` makes one, after detecting `avx512f`.
#[derive(Debug)]
pub(super) struct Avx512Kernel(());

impl Avx512Kernel {
    pub(super) fn new() -> Option<Avx512Kernel> {
        is_x86_feature_detected!("avx512f").then_some(Avx512Kernel(()))
    }
}

impl Kernel for Avx512Kernel {
    fn name(&self) -> &'static str {
        "avx512"
    }
    fn scan(&self, job: &HeaderJob, start: u64, count: u64) -> Option<u64> {
        // SAFETY: an Avx512Kernel only exists after `avx512f` was detected on this CPU.
        unsafe { scan(job, start, count) }
    }
}
