//! Scalar SHA-256 pieces and the per-job precomputation shared by the multi-lane kernels: all
//! the work of the two compressions that does not depend on the nonce.
//!
//! Nonce `n` enters the second 64-byte chunk as message words 4 and 5 (big-endian reads of the
//! little-endian nonce bytes): `W4 = (n as u32).swap_bytes()`, `W5 = ((n >> 32) as u32)
//! .swap_bytes()`. Every other word of that chunk is fixed per job, and the second hash's
//! message is the 32-byte digest followed by constant padding.

// Only the x86 kernels use this module; it stays portable so it is tested everywhere.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::{HeaderJob, IV};

/// SHA-256 round constants.
pub(super) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

pub(super) const fn big_s0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}
pub(super) const fn big_s1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}
pub(super) const fn small_s0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}
pub(super) const fn small_s1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}
const fn ch(e: u32, f: u32, g: u32) -> u32 {
    (e & f) ^ (!e & g)
}
const fn maj(a: u32, b: u32, c: u32) -> u32 {
    (a & b) ^ (a & c) ^ (b & c)
}

/// One scalar round on state `s` with `kw = K[i] + W[i]`.
const fn round(s: [u32; 8], kw: u32) -> [u32; 8] {
    let [a, b, c, d, e, f, g, h] = s;
    let t1 = h
        .wrapping_add(big_s1(e))
        .wrapping_add(ch(e, f, g))
        .wrapping_add(kw);
    let t2 = big_s0(a).wrapping_add(maj(a, b, c));
    [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g]
}

/// Whether word `j` of the first hash's second chunk (or its schedule) is the same for every
/// nonce: words 4 and 5 hold the nonce, and schedule words from 19 on depend on them.
const fn fixed1(j: usize) -> bool {
    j < 4 || (j >= 6 && j <= 18)
}

/// The nonce-independent part of the first hash's second compression.
#[derive(Clone, Debug)]
pub(super) struct Pre {
    /// State after compressing the first chunk (the feed-forward of compression 2).
    pub mid: [u32; 8],
    /// State after round 4 with the nonce word W4 left out: the lanes add W4 to words 0 and 4.
    pub s5: [u32; 8],
    /// State after round 3 (rounds 0..=3 only see fixed words).
    pub s4: [u32; 8],
    /// Message words 0..=18 (4 and 5 are zero: they hold the nonce).
    pub w: [u32; 19],
    /// `K[i] + W[i]` for the fixed words.
    pub kw: [u32; 19],
    /// For schedule words 19..=34: the sum of their fixed terms.
    pub c: [u32; 35],
    /// Target word 0: a lane whose hash word 0 is above it fails.
    pub t0: u32,
}

impl Pre {
    pub fn new(job: &HeaderJob) -> Pre {
        let mut w = [0u32; 19];
        for (i, x) in w.iter_mut().enumerate().take(16) {
            *x = u32::from_be_bytes([
                job.tail[4 * i],
                job.tail[4 * i + 1],
                job.tail[4 * i + 2],
                job.tail[4 * i + 3],
            ]);
        }
        w[4] = 0;
        w[5] = 0;
        for i in 16..19 {
            w[i] = small_s1(w[i - 2])
                .wrapping_add(w[i - 7])
                .wrapping_add(small_s0(w[i - 15]))
                .wrapping_add(w[i - 16]);
        }
        let mut kw = [0u32; 19];
        for i in 0..19 {
            kw[i] = K[i].wrapping_add(w[i]);
        }
        let mut c = [0u32; 35];
        for (i, ci) in c.iter_mut().enumerate().skip(19) {
            let mut sum = 0u32;
            if fixed1(i - 2) {
                sum = sum.wrapping_add(small_s1(w[i - 2]));
            }
            if fixed1(i - 7) {
                sum = sum.wrapping_add(w[i - 7]);
            }
            if fixed1(i - 15) {
                sum = sum.wrapping_add(small_s0(w[i - 15]));
            }
            if fixed1(i - 16) {
                sum = sum.wrapping_add(w[i - 16]);
            }
            *ci = sum;
        }
        let mut s4 = job.midstate;
        for &k in kw.iter().take(4) {
            s4 = round(s4, k);
        }
        // Round 4 with W4 = 0: its T1 and the new a and e are then off by exactly W4.
        let s5 = round(s4, K[4]);
        Pre {
            mid: job.midstate,
            s5,
            s4,
            w,
            kw,
            c,
            t0: job.target_words[0],
        }
    }
}

/// The second hash's message: the digest (words 0..8, per nonce) and constant padding.
pub(super) const PAD2: [u32; 16] = {
    let mut p = [0u32; 16];
    p[8] = 0x8000_0000;
    p[15] = 256;
    p
};

/// Constants of the second hash, the same for every job.
pub(super) struct Second {
    /// State after round 0 with W0 left out: the lanes add W0 to words 0 and 4.
    pub s1: [u32; 8],
    /// `K[i] + PAD2[i]` for rounds 8..16.
    pub kw: [u32; 16],
    /// For schedule words 16..=31: the sum of their constant terms.
    pub c: [u32; 32],
}

const fn fixed2(j: usize) -> bool {
    j >= 8 && j < 16
}

pub(super) const SECOND: Second = {
    let s1 = round(IV, K[0]);
    let mut kw = [0u32; 16];
    let mut i = 8;
    while i < 16 {
        kw[i] = K[i].wrapping_add(PAD2[i]);
        i += 1;
    }
    let mut c = [0u32; 32];
    let mut i = 16;
    while i < 32 {
        let mut sum = 0u32;
        if fixed2(i - 2) {
            sum = sum.wrapping_add(small_s1(PAD2[i - 2]));
        }
        if fixed2(i - 7) {
            sum = sum.wrapping_add(PAD2[i - 7]);
        }
        if fixed2(i - 15) {
            sum = sum.wrapping_add(small_s0(PAD2[i - 15]));
        }
        if fixed2(i - 16) {
            sum = sum.wrapping_add(PAD2[i - 16]);
        }
        c[i] = sum;
        i += 1;
    }
    Second { s1, kw, c }
};

/// Word 0 of the block hash computed the way the lane kernels do (from `Pre` and `SECOND`),
/// in scalar code: the tests check the precomputation with it on every target.
#[cfg(test)]
pub(super) fn word0_reference(p: &Pre, nonce: u64) -> u32 {
    let w4 = (nonce as u32).swap_bytes();
    let w5 = ((nonce >> 32) as u32).swap_bytes();
    let mut w = [0u32; 64];
    w[..19].copy_from_slice(&p.w);
    w[4] = w4;
    w[5] = w5;
    let mut s = p.s5;
    s[0] = s[0].wrapping_add(w4);
    s[4] = s[4].wrapping_add(w4);
    for i in 5..64 {
        if i >= 19 {
            w[i] = small_s1(w[i - 2])
                .wrapping_add(w[i - 7])
                .wrapping_add(small_s0(w[i - 15]))
                .wrapping_add(w[i - 16]);
        }
        s = round(s, K[i].wrapping_add(w[i]));
    }
    let mut x = [0u32; 64];
    for j in 0..8 {
        x[j] = s[j].wrapping_add(p.mid[j]);
    }
    x[8..16].copy_from_slice(&PAD2[8..]);
    let mut s = SECOND.s1;
    s[0] = s[0].wrapping_add(x[0]);
    s[4] = s[4].wrapping_add(x[0]);
    for i in 1..64 {
        if i >= 16 {
            x[i] = small_s1(x[i - 2])
                .wrapping_add(x[i - 7])
                .wrapping_add(small_s0(x[i - 15]))
                .wrapping_add(x[i - 16]);
        }
        s = round(s, K[i].wrapping_add(x[i]));
    }
    s[0].wrapping_add(IV[0])
}
