//! Signature validity, a consensus rule: ed25519 under the cofactored **ZIP-215** rule
//! (<https://zips.z.cash/zip-0215>), checked one at a time or as a batch with `ed25519-zebra`.
//!
//! A signature `(R_bytes, s_bytes)` by the key `A_bytes` on a 32-byte message `M` is valid when
//! - `A_bytes` and `R_bytes` decode to points of the curve (non-canonical encodings of a
//!   coordinate, small-order points and points with a torsion component are all accepted);
//! - `s_bytes` is an integer below the group order `ℓ` (a non-canonical `s` is refused);
//! - `[8][s]B = [8]R + [8][k]A`, with `k = SHA-512(R_bytes ‖ A_bytes ‖ M) mod ℓ` over the bytes
//!   as given.
//!
//! The cofactor 8 in the equation is what makes a batch check agree with one-by-one checks: a
//! random linear combination of cofactored equations holds exactly when each one does (but
//! with probability about 2⁻¹²⁸). Without it (as in `verify_strict`, or dalek's
//! `verify_batch`) a signature whose residual lies in the 8-torsion subgroup can pass one check
//! and fail the other, and nodes would disagree about blocks.
//!
//! Everything here is a function of its inputs: the batch's random coefficients are derived
//! from a hash of the whole batch (the way BIP-340 batch verification seeds them), so a batch
//! check is deterministic and needs no system randomness.

use ed25519_zebra::batch;
use ed25519_zebra::{Signature, VerificationKey, VerificationKeyBytes};
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use std::convert::Infallible;

/// One signature to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigCheck {
    pub msg: [u8; 32],
    pub pubkey: [u8; 32],
    pub signature: [u8; 64],
}

/// Checks signatures under the consensus rule ([`verify_one`]).
///
/// Every implementation must give the same answer as [`SerialVerifier`]: `Ok` when every
/// signature is valid, otherwise `Err` with the index of the **first** invalid one, so that
/// rule errors name the same input whichever verifier a node uses.
pub trait SigVerifier: Sync {
    fn verify_all(&self, checks: &[SigCheck]) -> Result<(), usize>;
}

/// Whether one signature is valid under ZIP-215 (the consensus rule).
pub fn verify_one(c: &SigCheck) -> bool {
    let Ok(key) = VerificationKey::try_from(c.pubkey) else {
        return false;
    };
    key.verify(&Signature::from_bytes(&c.signature), &c.msg)
        .is_ok()
}

/// Whether every signature in `checks` is valid, checked as one ZIP-215 batch. Agrees with
/// `checks.iter().all(verify_one)`: always when they are all valid, and otherwise except with
/// probability about 2⁻¹²⁸ per batch.
pub fn verify_batch(checks: &[SigCheck]) -> bool {
    match checks {
        [] => true,
        [one] => verify_one(one),
        _ => {
            let mut v = batch::Verifier::new();
            for c in checks {
                v.queue((
                    VerificationKeyBytes::from(c.pubkey),
                    Signature::from_bytes(&c.signature),
                    &c.msg[..],
                ));
            }
            v.verify(BatchRng::seeded(checks)).is_ok()
        }
    }
}

/// At or below this many signatures, a failed batch is searched one signature at a time.
const SCAN_BELOW: usize = 8;

/// Index of the first invalid signature in `checks`, if any: one batch check, and when that
/// fails, a leftmost-first bisection with batch checks of halves.
pub fn first_invalid(checks: &[SigCheck]) -> Option<usize> {
    if verify_batch(checks) {
        return None;
    }
    // The bisection's premise (a failed batch holds an invalid signature) holds but with
    // negligible probability; never report a valid set as invalid, nor miss an invalid one.
    locate(checks).or_else(|| checks.iter().position(|c| !verify_one(c)))
}

/// The first invalid signature in `checks`, a set whose batch check failed.
fn locate(checks: &[SigCheck]) -> Option<usize> {
    if checks.len() <= SCAN_BELOW {
        return checks.iter().position(|c| !verify_one(c));
    }
    let (left, right) = checks.split_at(checks.len() / 2);
    if !verify_batch(left) {
        return locate(left);
    }
    // The left half is valid, so the failure is in the right half.
    locate(right).map(|i| i + left.len())
}

/// One ZIP-215 check after another.
#[derive(Clone, Copy, Debug, Default)]
pub struct SerialVerifier;

impl SigVerifier for SerialVerifier {
    fn verify_all(&self, checks: &[SigCheck]) -> Result<(), usize> {
        match checks.iter().position(|c| !verify_one(c)) {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }
}

/// One ZIP-215 batch on the calling thread; on failure the bad signature is found by
/// bisection ([`first_invalid`]). Multi-core verification lives outside `core` (it needs
/// threads): see `node::verify::ParallelVerifier`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchVerifier;

impl SigVerifier for BatchVerifier {
    fn verify_all(&self, checks: &[SigCheck]) -> Result<(), usize> {
        match first_invalid(checks) {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }
}

const BATCH_SEED_TAG: &[u8] = b"chain-tui/batch-verify/v1";

/// The batch's coefficients: SHA-256 in counter mode, keyed by a hash of every key, signature
/// and message in the batch. An attacker who wants a batch with an invalid signature to pass
/// must find contents whose derived coefficients cancel the error, a 2⁻¹²⁸ chance per try.
struct BatchRng {
    seed: [u8; 32],
    counter: u64,
    buf: [u8; 32],
    used: usize,
}

impl BatchRng {
    fn seeded(checks: &[SigCheck]) -> BatchRng {
        let mut h = Sha256::new();
        h.update(BATCH_SEED_TAG);
        h.update((checks.len() as u64).to_le_bytes());
        for c in checks {
            h.update(c.pubkey);
            h.update(c.signature);
            h.update(c.msg);
        }
        BatchRng {
            seed: h.finalize().into(),
            counter: 0,
            buf: [0; 32],
            used: 32,
        }
    }
}

impl TryRng for BatchRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for byte in dst {
            if self.used == self.buf.len() {
                let mut h = Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_le_bytes());
                self.buf = h.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.buf[self.used];
            self.used += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for BatchRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;
    use sha2::Sha512;

    /// ℓ, the order of the prime-order subgroup, little-endian.
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// s + ℓ in place of s: the same scalar, not canonical (s < 2^253, so no overflow).
    fn add_ell(signature: &mut [u8; 64]) {
        let mut carry = 0u16;
        for (b, l) in signature[32..].iter_mut().zip(ELL) {
            let v = *b as u16 + l as u16 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0);
    }

    fn strict(c: &SigCheck) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&c.pubkey) else {
            return false;
        };
        key.verify_strict(&c.msg, &ed25519_dalek::Signature::from_bytes(&c.signature))
            .is_ok()
    }

    fn hram(r: &[u8; 32], a: &[u8; 32], msg: &[u8; 32]) -> Scalar {
        let mut h = Sha512::new();
        h.update(r);
        h.update(a);
        h.update(msg);
        Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }

    fn scalar(seed: &[u8; 32]) -> Scalar {
        let s = Scalar::from_bytes_mod_order(*seed);
        if s == Scalar::ZERO { Scalar::ONE } else { s }
    }

    /// A signature by the secret `a` under the key `[a]B + t_a`, with nonce point
    /// `[r]B + t_r`: the cofactorless equation fails whenever a torsion term survives, the
    /// cofactored one always holds.
    fn torsion_sig(
        a: Scalar,
        r: Scalar,
        t_a: EdwardsPoint,
        t_r: EdwardsPoint,
        msg: [u8; 32],
    ) -> SigCheck {
        let pubkey = (EdwardsPoint::mul_base(&a) + t_a).compress().to_bytes();
        let r_bytes = (EdwardsPoint::mul_base(&r) + t_r).compress().to_bytes();
        let s = r + hram(&r_bytes, &pubkey, &msg) * a;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r_bytes);
        signature[32..].copy_from_slice(&s.to_bytes());
        SigCheck {
            msg,
            pubkey,
            signature,
        }
    }

    fn signed(seed: &[u8; 32], msg: [u8; 32]) -> SigCheck {
        let k = SigningKey::from_bytes(seed);
        SigCheck {
            msg,
            pubkey: k.verifying_key().to_bytes(),
            signature: k.sign(&msg).to_bytes(),
        }
    }

    /// 255-bit little-endian addition of `p = 2^255 - 19` to a y coordinate below 19.
    fn plus_p(y: u8) -> [u8; 32] {
        let mut b = [0xff; 32];
        b[0] = 0xed + y; // y + 2^255 - 19, y < 19: no carry out of the first byte
        b[31] = 0x7f;
        b
    }

    /// Every encoding of every small-order point that decodes to it: the canonical one, the
    /// sign bit set on a zero x, and `y + p` for the points whose y is below 19.
    fn small_order_encodings() -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        for p in EIGHT_TORSION {
            let canon = p.compress().to_bytes();
            let mut candidates = vec![canon, {
                let mut b = canon;
                b[31] ^= 0x80;
                b
            }];
            let y_low = canon[0] & 0x7f == canon[0]
                && canon[1..31].iter().all(|&b| b == 0)
                && canon[31] & 0x7f == 0;
            if y_low && canon[0] < 19 {
                for sign in [0u8, 0x80] {
                    let mut b = plus_p(canon[0]);
                    b[31] |= sign;
                    candidates.push(b);
                }
            }
            for c in candidates {
                if CompressedEdwardsY(c).decompress() == Some(p) && !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        out
    }

    #[test]
    fn small_order_keys_and_nonces_in_every_encoding_are_valid() {
        // ZIP-215's own test set has this shape: 14 encodings of the 8 small-order points
        // (8 canonical, 6 not), every pair as (A, R), s = 0. [8]R + [8][k]A = 0 = [8][0]B.
        let enc = small_order_encodings();
        assert_eq!(enc.len(), 14, "{enc:02x?}");
        let non_canonical = enc
            .iter()
            .filter(|e| {
                CompressedEdwardsY(**e)
                    .decompress()
                    .map(|p| p.compress().to_bytes())
                    != Some(**e)
            })
            .count();
        assert_eq!(non_canonical, 6);
        let mut all = Vec::new();
        for a in &enc {
            for r in &enc {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(r);
                let c = SigCheck {
                    msg: *b"Zcash ZIP-215 small-order test!!",
                    pubkey: *a,
                    signature,
                };
                assert!(verify_one(&c), "A {a:02x?} R {r:02x?}");
                assert!(!strict(&c), "verify_strict refuses small-order keys");
                all.push(c);
            }
        }
        assert_eq!(all.len(), 196);
        assert!(verify_batch(&all));
        assert_eq!(BatchVerifier.verify_all(&all), Ok(()));
    }

    #[test]
    fn torsion_components_are_accepted_by_single_and_batch() {
        let msg = [7u8; 32];
        let (a, r) = (scalar(&[3; 32]), scalar(&[5; 32]));
        let identity = EIGHT_TORSION[0];
        let mut checks = Vec::new();
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            for (t_a, t_r) in [
                (*t, identity),
                (identity, *t),
                (*t, EIGHT_TORSION[(i + 3) % 8]),
            ] {
                let c = torsion_sig(a, r, t_a, t_r, msg);
                assert!(verify_one(&c), "torsion {i}");
                checks.push(c);
            }
        }
        // Some of these fail the cofactorless equation: exactly where dalek's strict check
        // and its batch check can disagree, and where ZIP-215 settles it.
        assert!(checks.iter().any(|c| !strict(c)));
        assert!(verify_batch(&checks));
        assert_eq!(BatchVerifier.verify_all(&checks), Ok(()));
    }

    #[test]
    fn non_canonical_s_and_undecodable_points_are_invalid() {
        let good = signed(&[9; 32], [1; 32]);
        assert!(verify_one(&good) && strict(&good));
        // s + ℓ: the same scalar, not canonical.
        let mut c = good;
        add_ell(&mut c.signature);
        assert!(!verify_one(&c));
        // y = 2 is not the y of any curve point: neither as a key nor as R.
        let mut off = [0u8; 32];
        off[0] = 2;
        assert!(CompressedEdwardsY(off).decompress().is_none());
        let mut bad_key = good;
        bad_key.pubkey = off;
        assert!(!verify_one(&bad_key));
        let mut bad_r = good;
        bad_r.signature[..32].copy_from_slice(&off);
        assert!(!verify_one(&bad_r));
        for set in [vec![good, c], vec![bad_key, good], vec![good, good, bad_r]] {
            assert!(!verify_batch(&set));
            assert_eq!(
                BatchVerifier.verify_all(&set),
                SerialVerifier.verify_all(&set)
            );
        }
    }

    #[test]
    fn non_canonical_key_encoding_signs_under_its_own_bytes() {
        // The identity as y = 1 + p: a valid key encoding under ZIP-215. k hashes the bytes
        // as given, so the signature is bound to this encoding.
        let msg = [4u8; 32];
        let pubkey = plus_p(1);
        assert_eq!(
            CompressedEdwardsY(pubkey).decompress(),
            Some(EIGHT_TORSION[0])
        );
        let r = scalar(&[8; 32]);
        let r_bytes = EdwardsPoint::mul_base(&r).compress().to_bytes();
        // A is the identity, so s = r whatever k is.
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r_bytes);
        signature[32..].copy_from_slice(&r.to_bytes());
        let c = SigCheck {
            msg,
            pubkey,
            signature,
        };
        assert!(verify_one(&c));
        assert!(!strict(&c));
        assert!(verify_batch(&[c, signed(&[1; 32], msg)]));
    }

    #[test]
    fn empty_and_single_sets() {
        assert!(verify_batch(&[]));
        assert_eq!(BatchVerifier.verify_all(&[]), Ok(()));
        let good = signed(&[2; 32], [0; 32]);
        let mut bad = good;
        bad.msg[0] ^= 1;
        assert_eq!(BatchVerifier.verify_all(&[good]), Ok(()));
        assert_eq!(BatchVerifier.verify_all(&[bad]), Err(0));
    }

    #[test]
    fn the_batch_coefficients_are_a_function_of_the_batch() {
        let a = [signed(&[1; 32], [1; 32]), signed(&[2; 32], [2; 32])];
        let b = [a[1], a[0]];
        let draw = |checks: &[SigCheck]| {
            let mut r = BatchRng::seeded(checks);
            let mut out = [0u8; 80];
            r.try_fill_bytes(&mut out).unwrap_or(());
            out
        };
        assert_eq!(draw(&a), draw(&a));
        assert_ne!(draw(&a), draw(&b));
        assert_ne!(draw(&a)[..32], draw(&a)[32..64]);
    }

    /// What to do to one signature of a random set.
    #[derive(Clone, Copy, Debug)]
    enum Twist {
        None,
        FlipBit(usize),
        OtherMessage,
        OtherKey,
        TorsionKey(usize),
        TorsionNonce(usize),
        SmallOrder(usize, usize),
        NonCanonicalS,
        OffCurveKey,
    }

    fn arb_twist() -> impl Strategy<Value = Twist> {
        prop_oneof![
            6 => Just(Twist::None),
            2 => (0usize..512).prop_map(Twist::FlipBit),
            1 => Just(Twist::OtherMessage),
            1 => Just(Twist::OtherKey),
            1 => (0usize..8).prop_map(Twist::TorsionKey),
            1 => (0usize..8).prop_map(Twist::TorsionNonce),
            1 => (0usize..14, 0usize..14).prop_map(|(a, r)| Twist::SmallOrder(a, r)),
            1 => Just(Twist::NonCanonicalS),
            1 => Just(Twist::OffCurveKey),
        ]
    }

    fn build(seed: [u8; 32], msg: [u8; 32], twist: Twist, enc: &[[u8; 32]]) -> SigCheck {
        let mut c = signed(&seed, msg);
        let id = EIGHT_TORSION[0];
        match twist {
            Twist::None => {}
            Twist::FlipBit(b) => c.signature[b / 8] ^= 1 << (b % 8),
            Twist::OtherMessage => c.msg[31] ^= 0x55,
            Twist::OtherKey => c.pubkey = signed(&[seed[0] ^ 1; 32], msg).pubkey,
            Twist::TorsionKey(t) => {
                c = torsion_sig(scalar(&seed), scalar(&msg), EIGHT_TORSION[t], id, msg)
            }
            Twist::TorsionNonce(t) => {
                c = torsion_sig(scalar(&seed), scalar(&msg), id, EIGHT_TORSION[t], msg)
            }
            Twist::SmallOrder(a, r) => {
                c.pubkey = enc[a];
                c.signature = [0; 64];
                c.signature[..32].copy_from_slice(&enc[r]);
            }
            Twist::NonCanonicalS => add_ell(&mut c.signature),
            Twist::OffCurveKey => {
                c.pubkey = [0; 32];
                c.pubkey[0] = 2;
            }
        }
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn batch_and_single_agree_on_random_sets(
            items in proptest::collection::vec(
                (any::<[u8; 32]>(), any::<[u8; 32]>(), arb_twist()), 1..40),
        ) {
            let enc = small_order_encodings();
            let checks: Vec<SigCheck> =
                items.iter().map(|(s, m, t)| build(*s, *m, *t, &enc)).collect();
            let serial = SerialVerifier.verify_all(&checks);
            prop_assert_eq!(BatchVerifier.verify_all(&checks), serial);
            prop_assert_eq!(verify_batch(&checks), serial.is_ok());
            for c in &checks {
                prop_assert_eq!(verify_batch(&[*c, checks[0]]), verify_one(c) && verify_one(&checks[0]));
            }
            // Everything verify_strict accepts, ZIP-215 accepts: the change only widens.
            for c in &checks {
                prop_assert!(!strict(c) || verify_one(c));
            }
        }

        #[test]
        fn the_first_bad_signature_is_found_wherever_it_is(
            n in 2usize..70, bad in proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
            seed in any::<u8>(),
        ) {
            let mut checks: Vec<SigCheck> =
                (0..n).map(|i| signed(&[seed ^ (i as u8); 32], [i as u8; 32])).collect();
            let bad: std::collections::BTreeSet<usize> = bad.iter().map(|b| b.index(n)).collect();
            for &i in &bad {
                checks[i].signature[40] ^= 4;
            }
            let first = bad.first().copied().unwrap_or(n);
            prop_assert_eq!(SerialVerifier.verify_all(&checks), Err(first));
            prop_assert_eq!(BatchVerifier.verify_all(&checks), Err(first));
            prop_assert_eq!(first_invalid(&checks), Some(first));
        }
    }
}
