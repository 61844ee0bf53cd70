//! The multi-lane SHA-256d algorithm, written once for every vector width. A backend module
//! defines `splat`, `add`, `bsig0`, `bsig1`, `ssig0`, `ssig1`, `ch` and `maj` on its vector
//! type (each `#[target_feature]`), then invokes `lane_sha256d!(feature, type)`, which defines
//! `round` and `hash_word0` with the same target feature. Every lane hashes its own nonce.

/// Repeat `$body` with `$i` bound to each literal: straight-line code with constant indices,
/// so the message schedule lives in registers and the state shifts cost nothing.
macro_rules! unroll {
    ($i:ident in [$($n:literal),* $(,)?] $body:block) => {
        $( { let $i: usize = $n; $body } )*
    };
}
pub(super) use unroll;

macro_rules! lane_sha256d {
    ($feat:literal, $V:ty) => {
        use super::lanes::unroll;
        use super::pre::{K, Pre, SECOND};

        /// One SHA-256 round on every lane; `kw` is `K[i] + W[i]`.
        #[inline]
        #[target_feature(enable = $feat)]
        fn round(s: &mut [$V; 8], kw: $V) {
            let [a, b, c, d, e, f, g, h] = *s;
            let t1 = add(add(h, bsig1(e)), add(ch(e, f, g), kw));
            let t2 = add(bsig0(a), maj(a, b, c));
            *s = [add(t1, t2), a, b, c, add(d, t1), e, f, g];
        }

        /// Word 0 (the most significant) of SHA-256d of the header whose nonce words are
        /// `w4`, `w5` in each lane. Only what word 0 needs is computed: the other seven
        /// words of the second hash are never finished (the compiler drops that work).
        #[inline]
        #[target_feature(enable = $feat)]
        fn hash_word0(p: &Pre, w4: $V, w5: $V) -> $V {
            // ---- First hash, second chunk: rounds 0..=3 and most of round 4 are in `p`.
            let mut w = [splat(0); 64];
            w[4] = w4;
            w[5] = w5;
            let mut s = [
                add(splat(p.s5[0]), w4),
                splat(p.s5[1]),
                splat(p.s5[2]),
                splat(p.s5[3]),
                add(splat(p.s5[4]), w4),
                splat(p.s5[5]),
                splat(p.s5[6]),
                splat(p.s5[7]),
            ];
            round(&mut s, add(splat(K[5]), w5));
            unroll!(i in [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18] {
                round(&mut s, splat(p.kw[i]));
            });
            w[19] = add(splat(p.c[19]), ssig0(w[4]));
            round(&mut s, add(splat(K[19]), w[19]));
            w[20] = add(add(splat(p.c[20]), ssig0(w[5])), w[4]);
            round(&mut s, add(splat(K[20]), w[20]));
            w[21] = add(add(splat(p.c[21]), ssig1(w[19])), w[5]);
            round(&mut s, add(splat(K[21]), w[21]));
            unroll!(i in [22, 23, 24, 25] {
                w[i] = add(splat(p.c[i]), ssig1(w[i - 2]));
                round(&mut s, add(splat(K[i]), w[i]));
            });
            unroll!(i in [26, 27, 28, 29, 30, 31, 32, 33] {
                w[i] = add(add(splat(p.c[i]), ssig1(w[i - 2])), w[i - 7]);
                round(&mut s, add(splat(K[i]), w[i]));
            });
            w[34] = add(add(splat(p.c[34]), ssig1(w[32])), add(w[27], ssig0(w[19])));
            round(&mut s, add(splat(K[34]), w[34]));
            unroll!(i in [35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
                          52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63] {
                w[i] = add(add(ssig1(w[i - 2]), w[i - 7]), add(ssig0(w[i - 15]), w[i - 16]));
                round(&mut s, add(splat(K[i]), w[i]));
            });

            // ---- Second hash: the digest, then constant padding. Round 0 is in SECOND.
            let mut x = [splat(0); 64];
            unroll!(j in [0, 1, 2, 3, 4, 5, 6, 7] {
                x[j] = add(s[j], splat(p.mid[j]));
            });
            let c = &SECOND;
            let mut s = [
                add(splat(c.s1[0]), x[0]),
                splat(c.s1[1]),
                splat(c.s1[2]),
                splat(c.s1[3]),
                add(splat(c.s1[4]), x[0]),
                splat(c.s1[5]),
                splat(c.s1[6]),
                splat(c.s1[7]),
            ];
            unroll!(i in [1, 2, 3, 4, 5, 6, 7] {
                round(&mut s, add(splat(K[i]), x[i]));
            });
            unroll!(i in [8, 9, 10, 11, 12, 13, 14, 15] {
                round(&mut s, splat(c.kw[i]));
            });
            // Words 8..16 are constants (9..=14 zero): only the live terms are added.
            x[16] = add(ssig0(x[1]), x[0]);
            round(&mut s, add(splat(K[16]), x[16]));
            x[17] = add(add(ssig0(x[2]), x[1]), splat(c.c[17]));
            round(&mut s, add(splat(K[17]), x[17]));
            unroll!(i in [18, 19, 20, 21, 22] {
                x[i] = add(add(ssig1(x[i - 2]), ssig0(x[i - 15])), add(x[i - 16], splat(c.c[i])));
                round(&mut s, add(splat(K[i]), x[i]));
            });
            x[23] = add(add(ssig1(x[21]), x[16]), add(x[7], splat(c.c[23])));
            round(&mut s, add(splat(K[23]), x[23]));
            x[24] = add(add(ssig1(x[22]), x[17]), splat(c.c[24]));
            round(&mut s, add(splat(K[24]), x[24]));
            unroll!(i in [25, 26, 27, 28, 29] {
                x[i] = add(ssig1(x[i - 2]), x[i - 7]);
                round(&mut s, add(splat(K[i]), x[i]));
            });
            x[30] = add(add(ssig1(x[28]), x[23]), splat(c.c[30]));
            round(&mut s, add(splat(K[30]), x[30]));
            x[31] = add(add(ssig1(x[29]), x[24]), add(ssig0(x[16]), splat(c.c[31])));
            round(&mut s, add(splat(K[31]), x[31]));
            unroll!(i in [32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
                          49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63] {
                x[i] = add(add(ssig1(x[i - 2]), x[i - 7]), add(ssig0(x[i - 15]), x[i - 16]));
                round(&mut s, add(splat(K[i]), x[i]));
            });
            add(s[0], splat(super::IV[0]))
        }
    };
}
pub(super) use lane_sha256d;
