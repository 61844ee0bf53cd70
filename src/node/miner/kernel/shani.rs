//! SHA-NI kernel with interleaved streams: `STREAMS` nonces hashed side by side, so the
//! latency of one `sha256rnds2` chain is hidden behind the others. Only compiled for x86_64,
//! only called after `sha` and `sse4.1` were detected.

use super::pre::{K, PAD2, Pre};
use super::{HeaderJob, IV, Kernel};
use std::arch::x86_64::*;

type V = __m128i;
/// Nonces in flight per pass.
const STREAMS: usize = 2;

/// Four words as a vector, word 0 in lane 0.
#[inline]
#[target_feature(enable = "sse2")]
fn vec4(w: [u32; 4]) -> V {
    _mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32)
}

/// `K[4g..4g + 4]`.
#[inline]
#[target_feature(enable = "sse2")]
fn kvec(g: usize) -> V {
    vec4([K[4 * g], K[4 * g + 1], K[4 * g + 2], K[4 * g + 3]])
}

/// State words `[a, .., h]` in the ABEF / CDGH layout `sha256rnds2` works on.
#[inline]
#[target_feature(enable = "sse2")]
fn to_abef_cdgh(s: [u32; 8]) -> (V, V) {
    (
        vec4([s[5], s[4], s[1], s[0]]),
        vec4([s[7], s[6], s[3], s[2]]),
    )
}

/// Four rounds; `kw` holds `K[i] + W[i]` for the four.
#[inline]
#[target_feature(enable = "sha,sse2")]
fn rounds4(abef: &mut V, cdgh: &mut V, kw: V) {
    *cdgh = _mm_sha256rnds2_epu32(*cdgh, *abef, kw);
    *abef = _mm_sha256rnds2_epu32(*abef, *cdgh, _mm_shuffle_epi32::<0x0E>(kw));
}

/// The next four schedule words from the previous sixteen.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3")]
fn next4(w0: V, w1: V, w2: V, w3: V) -> V {
    let t = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8::<4>(w3, w2));
    _mm_sha256msg2_epu32(t, w3)
}

/// Rounds 16..64 of one compression per stream; `w` holds words 0..16.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3")]
fn rounds16_64(abef: &mut [V; STREAMS], cdgh: &mut [V; STREAMS], w: &mut [[V; 4]; STREAMS]) {
    super::lanes::unroll!(g in [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
        let i = g % 4;
        for s in 0..STREAMS {
            let ws = &mut w[s];
            ws[i] = next4(ws[i], ws[(i + 1) % 4], ws[(i + 2) % 4], ws[(i + 3) % 4]);
            rounds4(&mut abef[s], &mut cdgh[s], _mm_add_epi32(ws[i], kvec(g)));
        }
    });
}

/// What stays the same for every nonce of a job, in vector form.
struct ShaPre {
    /// State after rounds 0..=3 of the first hash's second compression.
    abef4: V,
    cdgh4: V,
    /// The feed-forward (midstate).
    mid_abef: V,
    mid_cdgh: V,
    /// Message words 0..4, 8..12, 12..16, and `K + W` for rounds 8..16.
    w0: V,
    w2: V,
    w3: V,
    kw2: V,
    kw3: V,
    /// Words 6 and 7 (word group 1 is `[nonce lo, nonce hi, w6, w7]`).
    w6: u32,
    w7: u32,
    t0: u32,
}

#[target_feature(enable = "sse2")]
fn sha_pre(p: &Pre) -> ShaPre {
    let (abef4, cdgh4) = to_abef_cdgh(p.s4);
    let (mid_abef, mid_cdgh) = to_abef_cdgh(p.mid);
    let group = |g: usize| [p.w[4 * g], p.w[4 * g + 1], p.w[4 * g + 2], p.w[4 * g + 3]];
    let kgroup = |g: usize| {
        [
            p.kw[4 * g],
            p.kw[4 * g + 1],
            p.kw[4 * g + 2],
            p.kw[4 * g + 3],
        ]
    };
    ShaPre {
        abef4,
        cdgh4,
        mid_abef,
        mid_cdgh,
        w0: vec4(group(0)),
        w2: vec4(group(2)),
        w3: vec4(group(3)),
        kw2: vec4(kgroup(2)),
        kw3: vec4(kgroup(3)),
        w6: p.w[6],
        w7: p.w[7],
        t0: p.t0,
    }
}

/// Hash word 0 of SHA-256d for each stream's nonce.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn word0(p: &ShaPre, n: [u64; STREAMS]) -> [u32; STREAMS] {
    // First hash, second chunk, from the state after round 3.
    let mut abef = [p.abef4; STREAMS];
    let mut cdgh = [p.cdgh4; STREAMS];
    let w1 = n.map(|n| {
        vec4([
            (n as u32).swap_bytes(),
            ((n >> 32) as u32).swap_bytes(),
            p.w6,
            p.w7,
        ])
    });
    for s in 0..STREAMS {
        rounds4(&mut abef[s], &mut cdgh[s], _mm_add_epi32(w1[s], kvec(1)));
    }
    for s in 0..STREAMS {
        rounds4(&mut abef[s], &mut cdgh[s], p.kw2);
    }
    for s in 0..STREAMS {
        rounds4(&mut abef[s], &mut cdgh[s], p.kw3);
    }
    let mut w = w1.map(|w1| [p.w0, w1, p.w2, p.w3]);
    rounds16_64(&mut abef, &mut cdgh, &mut w);

    // Second hash: message = digest (in a..h order) and constant padding.
    let (iv_abef, iv_cdgh) = to_abef_cdgh(IV);
    let pad2 = vec4([PAD2[8], PAD2[9], PAD2[10], PAD2[11]]);
    let pad3 = vec4([PAD2[12], PAD2[13], PAD2[14], PAD2[15]]);
    let kw2 = _mm_add_epi32(pad2, kvec(2));
    let kw3 = _mm_add_epi32(pad3, kvec(3));
    let mut x = [[pad2; 4]; STREAMS];
    for s in 0..STREAMS {
        let ab = _mm_add_epi32(abef[s], p.mid_abef);
        let cd = _mm_add_epi32(cdgh[s], p.mid_cdgh);
        let feba = _mm_shuffle_epi32::<0x1B>(ab);
        let dchg = _mm_shuffle_epi32::<0xB1>(cd);
        x[s] = [
            _mm_blend_epi16::<0xF0>(feba, dchg),
            _mm_alignr_epi8::<8>(dchg, feba),
            pad2,
            pad3,
        ];
        abef[s] = iv_abef;
        cdgh[s] = iv_cdgh;
    }
    for s in 0..STREAMS {
        rounds4(&mut abef[s], &mut cdgh[s], _mm_add_epi32(x[s][0], kvec(0)));
    }
    for s in 0..STREAMS {
        rounds4(&mut abef[s], &mut cdgh[s], _mm_add_epi32(x[s][1], kvec(1)));
    }
    for s in 0..STREAMS {
        rounds4(&mut abef[s], &mut cdgh[s], kw2);
    }
    for s in 0..STREAMS {
        rounds4(&mut abef[s], &mut cdgh[s], kw3);
    }
    rounds16_64(&mut abef, &mut cdgh, &mut x);
    abef.map(|v| (_mm_extract_epi32::<3>(v) as u32).wrapping_add(IV[0]))
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn scan(job: &HeaderJob, start: u64, count: u64) -> Option<u64> {
    let p = sha_pre(&Pre::new(job));
    super::scan_batches(job, start, count, STREAMS as u64, |base| {
        let n: [u64; STREAMS] = std::array::from_fn(|i| base.wrapping_add(i as u64));
        let h0 = word0(&p, n);
        let mut mask = 0;
        for (i, h) in h0.iter().enumerate() {
            if *h <= p.t0 {
                mask |= 1 << i;
            }
        }
        mask
    })
}

/// The SHA-NI kernel. Only `super::select` makes one, after detecting `sha` and `sse4.1`.
#[derive(Debug)]
pub(super) struct ShaNiKernel(());

impl ShaNiKernel {
    pub(super) fn new() -> Option<ShaNiKernel> {
        (is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1"))
        .then_some(ShaNiKernel(()))
    }
}

impl Kernel for ShaNiKernel {
    fn name(&self) -> &'static str {
        "sha-ni-x2"
    }
    fn scan(&self, job: &HeaderJob, start: u64, count: u64) -> Option<u64> {
        // SAFETY: a ShaNiKernel only exists after `sha`, `sse2`, `ssse3` and `sse4.1` were
        // detected on this CPU.
        unsafe { scan(job, start, count) }
    }
}
