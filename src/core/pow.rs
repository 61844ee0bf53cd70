//! Proof-of-work consensus arithmetic for `chain-tui`.
//!
//! This module owns everything about "how hard is a block":
//!
//! * [`Target`]: the 256-bit threshold a block hash (read big-endian) must not exceed;
//! * [`CompactTarget`]: the 32-bit Bitcoin-style `nBits` encoding that headers actually
//!   store, with strict decoding ([`CompactError`]) and canonicality checks;
//! * [`Work`]: expected hashes per block / cumulative chain work, used for fork choice;
//! * [`DifficultyRule`] and [`next_target`]: the per-network retargeting rule
//!   (a fixed target for regtest, an LWMA-1 style weighted average otherwise);
//! * [`si_text`]: human-readable rendering of work and difficulty figures.
//!
//! Everything here is integer arithmetic (no floating point anywhere) and is written
//! so that no input can make it panic: overflow is handled with checked, saturating or
//! explicitly widened (512-bit) arithmetic.

pub use ruint::aliases::U256;
use ruint::aliases::U512;

/// Sign bit of the compact encoding's 24-bit mantissa.
const COMPACT_SIGN_BIT: u32 = 0x0080_0000;
/// The 23 value bits of the compact encoding's mantissa.
const COMPACT_MANTISSA_MASK: u32 = 0x007f_ffff;
/// Upper bound on a single (monotonic) solvetime, in multiples of the target spacing.
const MAX_SOLVETIME_FACTOR: u64 = 6;

/// A 256-bit proof-of-work target. A block hash (32 bytes, read as a BIG-ENDIAN unsigned
/// integer) meets it if `hash <= target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target(pub U256);

/// Cumulative or per-block work (expected number of hashes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Work(pub U256);

/// Compact 32-bit target encoding exactly like Bitcoin's `nBits`: the high byte is the
/// size of the value in bytes (exponent), the low 23 bits are the mantissa and
/// `0x00800000` is a sign bit (never set in a valid target).
///
/// Value = `mantissa * 256^(size - 3)` (for `size < 3` the mantissa is shifted right).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CompactTarget(pub u32);

/// Why a [`CompactTarget`] does not decode to a usable [`Target`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// The sign bit is set and the mantissa is non-zero.
    #[error("compact target is negative (sign bit set with a non-zero mantissa)")]
    Negative,
    /// The decoded value does not fit in 256 bits.
    #[error("compact target overflows 256 bits")]
    Overflow,
    /// The decoded value is zero, which no hash could meet.
    #[error("compact target decodes to zero")]
    Zero,
}

/// Widen a 256-bit value to 512 bits (lossless).
fn widen(v: U256) -> U512 {
    let l = v.as_limbs();
    U512::from_limbs([l[0], l[1], l[2], l[3], 0, 0, 0, 0])
}

/// Narrow a 512-bit value to 256 bits, saturating at `U256::MAX`.
fn narrow_saturating(v: U512) -> U256 {
    let l = v.as_limbs();
    if l[4..].iter().any(|&x| x != 0) {
        U256::MAX
    } else {
        U256::from_limbs([l[0], l[1], l[2], l[3]])
    }
}

fn u512_from_u64(x: u64) -> U512 {
    U512::from_limbs([x, 0, 0, 0, 0, 0, 0, 0])
}

impl CompactTarget {
    /// Decode following Bitcoin's `SetCompact`, rejecting negative and overflowing
    /// encodings but allowing zero.
    fn decode(self) -> Result<U256, CompactError> {
        let size = self.0 >> 24; // 0..=255
        let mut word = self.0 & COMPACT_MANTISSA_MASK;
        if size <= 3 {
            // 8 * (3 - size) is at most 24, so this shift is always in range.
            word >>= 8 * (3 - size);
        }
        if word != 0 && self.0 & COMPACT_SIGN_BIT != 0 {
            return Err(CompactError::Negative);
        }
        if word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)) {
            return Err(CompactError::Overflow);
        }
        let value = U256::from_limbs([u64::from(word), 0, 0, 0]);
        if size <= 3 || word == 0 {
            return Ok(value);
        }
        // size is in 4..=34 here, so the shift is at most 248 bits.
        let shift = 8 * (size - 3) as usize;
        value.checked_shl(shift).ok_or(CompactError::Overflow)
    }

    /// Decode; errors if the sign bit is set with a non-zero mantissa
    /// ([`CompactError::Negative`]), if the value overflows 256 bits
    /// ([`CompactError::Overflow`]), or if it decodes to zero ([`CompactError::Zero`]).
    pub fn to_target(self) -> Result<Target, CompactError> {
        let value = self.decode()?;
        if value.is_zero() {
            return Err(CompactError::Zero);
        }
        Ok(Target(value))
    }

    /// True iff this is a valid encoding and encoding `to_target()` back gives exactly
    /// these bits (canonical).
    pub fn is_canonical(self) -> bool {
        match self.to_target() {
            Ok(t) => t.to_compact() == self,
            Err(_) => false,
        }
    }
}

impl std::fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

impl Target {
    /// The easiest possible target (every hash meets it).
    pub const MAX: Target = Target(U256::MAX);

    /// Canonical compact encoding, like Bitcoin's `GetCompact`: precision beyond the
    /// 3 most significant bytes is rounded down, and the sign bit is never set (if the
    /// mantissa would have its top bit set it is shifted down a byte and the exponent
    /// bumped). Target 0 encodes as `0x00000000`.
    pub fn to_compact(self) -> CompactTarget {
        let mut size = self.0.bit_len().div_ceil(8); // 0..=32
        let mut mantissa: u32 = if size <= 3 {
            // value < 2^24: move it up so it occupies the 3 mantissa bytes.
            let low = self.0.as_limbs()[0] & 0x00ff_ffff;
            ((low << (8 * (3 - size))) & 0x00ff_ffff) as u32
        } else {
            let shifted = self.0.wrapping_shr(8 * (size - 3));
            (shifted.as_limbs()[0] & 0x00ff_ffff) as u32
        };
        if mantissa & COMPACT_SIGN_BIT != 0 {
            mantissa >>= 8;
            size += 1;
        }
        // size <= 33 fits easily in the exponent byte.
        CompactTarget(mantissa | ((size as u32) << 24))
    }

    /// Round-trip through compact (what the chain actually stores). Never increases the
    /// target; a non-zero target stays non-zero.
    pub fn round_compact(self) -> Target {
        // A canonical encoding produced by `to_compact` never fails to decode; the
        // fallback only exists to keep this function total.
        Target(self.to_compact().decode().unwrap_or(U256::ZERO))
    }

    /// Whether a block hash (big-endian 256-bit integer) meets this target.
    pub fn is_met_by(&self, hash_be: &[u8; 32]) -> bool {
        U256::from_be_bytes(*hash_be) <= self.0
    }

    /// Expected hashes to meet this target: `floor(2^256 / (target + 1))`, computed as
    /// `(!t / (t + 1)) + 1` so nothing overflows. Target 0 returns `U256::MAX`
    /// (the true value 2^256 does not fit).
    pub fn work(&self) -> Work {
        if self.0.is_zero() {
            return Work(U256::MAX);
        }
        match self.0.checked_add(U256::ONE) {
            // t == U256::MAX: 2^256 / 2^256 == 1.
            None => Work(U256::ONE),
            Some(t1) => {
                let q = (!self.0).checked_div(t1).unwrap_or(U256::ZERO);
                Work(q.saturating_add(U256::ONE))
            }
        }
    }

    /// Difficulty relative to `limit`: `floor(limit / target)` (>= 1 when
    /// `target <= limit`). A zero target yields `U256::MAX`.
    pub fn difficulty(&self, limit: &Target) -> U256 {
        limit.0.checked_div(self.0).unwrap_or(U256::MAX)
    }
}

impl Work {
    /// No work.
    pub const ZERO: Work = Work(U256::ZERO);

    /// Sum, or `None` on 256-bit overflow.
    pub fn checked_add(self, other: Work) -> Option<Work> {
        self.0.checked_add(other.0).map(Work)
    }

    /// Sum, saturating at `U256::MAX`.
    pub fn saturating_add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }

    /// Big-endian bytes (for storage).
    pub fn to_be_bytes(&self) -> [u8; 32] {
        self.0.to_be_bytes::<32>()
    }

    /// From big-endian bytes.
    pub fn from_be_bytes(b: [u8; 32]) -> Work {
        Work(U256::from_be_bytes(b))
    }
}

/// Human text for a U256 amount (work, difficulty): decimal with an SI suffix and
/// 3 significant digits, truncated (not rounded), e.g. `"912"`, `"18.4k"`, `"3.21M"`,
/// `"1.05G"`. Suffixes go `k M G T P E Z Y R Q`; at 10^33 and beyond, scientific
/// notation with one integer digit is used instead, e.g. `"1.15e77"`. Integer-only.
pub fn si_text(v: U256) -> String {
    const SUFFIXES: [&str; 10] = ["k", "M", "G", "T", "P", "E", "Z", "Y", "R", "Q"];
    let digits = v.to_string();
    let len = digits.len();
    if len <= 3 {
        return digits;
    }
    let group = (len - 1) / 3; // >= 1
    let lead = len - 3 * group; // 1..=3 integer digits
    let sig = digits.get(..3).unwrap_or(&digits);
    let (int_part, frac_part) = sig.split_at(lead.min(sig.len()));
    let mut out = String::from(int_part);
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(frac_part);
    }
    match SUFFIXES.get(group - 1) {
        Some(s) => out.push_str(s),
        None => {
            // Scientific form with a single integer digit: d.dd e(len-1).
            let mut sci = String::from(sig.get(..1).unwrap_or("0"));
            sci.push('.');
            sci.push_str(sig.get(1..).unwrap_or(""));
            sci.push('e');
            sci.push_str(&(len - 1).to_string());
            return sci;
        }
    }
    out
}

/// One ancestor block as the difficulty rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowSample {
    /// Block height.
    pub height: u64,
    /// Block timestamp (seconds).
    pub time: u64,
    /// Target the block carried.
    pub target: Target,
}

/// Difficulty rule of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DifficultyRule {
    /// Every block must carry exactly `limit` (regtest).
    Fixed,
    /// LWMA-1 style per-block rule with window `window` (e.g. 45).
    Lwma {
        /// Number of solvetimes averaged.
        window: u64,
    },
}

/// Clamp a 512-bit candidate target to `[1, limit]` and round it through compact.
fn finish_target(candidate: U512, limit: Target) -> Target {
    let clamped = if candidate > widen(limit.0) {
        limit.0
    } else if candidate.is_zero() {
        U256::ONE
    } else {
        narrow_saturating(candidate)
    };
    Target(clamped).round_compact()
}

/// The target a child block at height `child_height` must carry.
///
/// `history` is the chain's most recent blocks ending at the parent (parent LAST),
/// ordered by height ascending with contiguous heights; the caller passes up to
/// `window + 1` samples (more are ignored, fewer just shorten the window).
///
/// * [`DifficultyRule::Fixed`]: returns `limit` unchanged (it should be canonical).
/// * [`DifficultyRule::Lwma`]: for `child_height <= 2`, or when fewer than two usable
///   samples exist, the result is `initial` (clamped to `[1, limit]` and rounded through
///   compact, which leaves a canonical in-range `initial` unchanged). Genesis (height 0)
///   is never used as a sample. Otherwise, with `n = min(window, usable - 1)`
///   solvetimes: timestamps are made monotonic (`t_i = max(t_i, t_{i-1} + 1)`), each
///   solvetime is clamped to `[1, 6 * spacing]`, weighted linearly (most recent gets
///   weight `n`), and
///   `next = avg(target of the n most recent) * weighted / (spacing * n(n+1)/2)`,
///   computed in 512-bit integers, clamped to `[1, limit]` and rounded through compact.
///
/// A `spacing` of 0 is treated as 1. Never panics.
pub fn next_target(
    rule: DifficultyRule,
    history: &[PowSample],
    child_height: u64,
    spacing: u64,
    initial: Target,
    limit: Target,
) -> Target {
    let window = match rule {
        DifficultyRule::Fixed => return limit,
        DifficultyRule::Lwma { window } => window,
    };
    let initial_target = finish_target(widen(initial.0), limit);
    if child_height <= 2 {
        return initial_target;
    }

    let usable: Vec<&PowSample> = history.iter().filter(|s| s.height >= 1).collect();
    let available = u64::try_from(usable.len())
        .unwrap_or(u64::MAX)
        .saturating_sub(1);
    let n = window.min(available);
    if n == 0 {
        return initial_target;
    }
    // n <= usable.len() - 1, so it fits in usize and the subtraction cannot underflow.
    let Some(start) = usize::try_from(n)
        .ok()
        .and_then(|n| usable.len().checked_sub(n.saturating_add(1)))
    else {
        return initial_target;
    };
    let Some((first, recent)) = usable.get(start..).and_then(|s| s.split_first()) else {
        return initial_target;
    };

    let spacing = spacing.max(1);
    let max_solvetime = spacing.saturating_mul(MAX_SOLVETIME_FACTOR);
    let mut prev_time = first.time;
    let mut weighted = U512::ZERO;
    let mut target_sum = U512::ZERO;
    let mut weight: u64 = 0;
    for sample in recent {
        weight = weight.saturating_add(1);
        let time = sample.time.max(prev_time.saturating_add(1));
        let solvetime = time.saturating_sub(prev_time).clamp(1, max_solvetime);
        prev_time = time;
        weighted =
            weighted.saturating_add(u512_from_u64(weight).saturating_mul(u512_from_u64(solvetime)));
        target_sum = target_sum.saturating_add(widen(sample.target.0));
    }

    let n_big = u512_from_u64(n);
    let avg_target = target_sum.checked_div(n_big).unwrap_or(U512::ZERO);
    // spacing * n * (n + 1) / 2; n*(n+1) is always even.
    let denominator = n_big
        .saturating_mul(n_big.saturating_add(U512::ONE))
        .wrapping_shr(1)
        .saturating_mul(u512_from_u64(spacing));
    let next = avg_target
        .saturating_mul(weighted)
        .checked_div(denominator)
        .unwrap_or(widen(limit.0));
    finish_target(next, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex_target(s: &str) -> Target {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        Target(U256::from_be_bytes(bytes))
    }

    const BTC_GENESIS_HEX: &str =
        "00000000ffff0000000000000000000000000000000000000000000000000000";

    #[test]
    fn bitcoin_genesis_vector() {
        let t = hex_target(BTC_GENESIS_HEX);
        assert_eq!(CompactTarget(0x1d00ffff).to_target().unwrap(), t);
        assert_eq!(t.to_compact(), CompactTarget(0x1d00ffff));
        assert!(CompactTarget(0x1d00ffff).is_canonical());
        assert_eq!(t.work(), Work(U256::from(0x0100010001u64)));
        assert_eq!(t.work().0, U256::from(4_295_032_833u64));
    }

    #[test]
    fn regtest_vector() {
        let t = CompactTarget(0x207fffff).to_target().unwrap();
        assert_eq!(t.0, U256::from(0x7fffffu64) << (8 * (0x20 - 3)));
        assert_eq!(t.to_compact(), CompactTarget(0x207fffff));
        assert!(CompactTarget(0x207fffff).is_canonical());
        assert_eq!(t.work().0, U256::from(2u64));
    }

    #[test]
    fn block_32256_vector() {
        let t = CompactTarget(0x1b0404cb).to_target().unwrap();
        assert_eq!(
            t,
            hex_target("00000000000404cb000000000000000000000000000000000000000000000000")
        );
        assert_eq!(t.to_compact(), CompactTarget(0x1b0404cb));
    }

    #[test]
    fn invalid_compacts() {
        assert_eq!(
            CompactTarget(0x01fedcba).to_target(),
            Err(CompactError::Negative)
        );
        assert_eq!(
            CompactTarget(0x04923456).to_target(),
            Err(CompactError::Negative)
        );
        assert_eq!(
            CompactTarget(0xff123456).to_target(),
            Err(CompactError::Overflow)
        );
        assert_eq!(
            CompactTarget(0x23000001).to_target(),
            Err(CompactError::Overflow)
        );
        assert_eq!(
            CompactTarget(0x00000000).to_target(),
            Err(CompactError::Zero)
        );
        // Sign bit with a mantissa that shifts to zero is merely zero (as in Bitcoin).
        assert_eq!(
            CompactTarget(0x01803456).to_target(),
            Err(CompactError::Zero)
        );
        assert_eq!(
            CompactTarget(0x00923456).to_target(),
            Err(CompactError::Zero)
        );
        assert_eq!(
            CompactTarget(0x20000000).to_target(),
            Err(CompactError::Zero)
        );
        for bits in [0x01fedcba, 0xff123456, 0x00000000] {
            assert!(!CompactTarget(bits).is_canonical());
        }
        // Error messages exist and are non-empty.
        assert!(!CompactError::Overflow.to_string().is_empty());
    }

    #[test]
    fn largest_values_decode() {
        // Largest representable exponents on the overflow boundary.
        assert!(CompactTarget(0x2200ffff).to_target().is_err());
        assert!(CompactTarget(0x220000ff).to_target().is_ok());
        assert!(CompactTarget(0x2100ffff).to_target().is_ok());
        assert!(CompactTarget(0x2101ffff).to_target().is_err());
        assert!(CompactTarget(0x207fffff).to_target().is_ok());
        assert_eq!(Target::MAX.to_compact(), CompactTarget(0x2100ffff));
        assert!(Target::MAX.to_compact().is_canonical());
    }

    #[test]
    fn small_values() {
        let one = Target(U256::from(1u64));
        assert_eq!(one.to_compact(), CompactTarget(0x01010000));
        assert_eq!(
            CompactTarget(0x01123456).to_target().unwrap().0,
            U256::from(0x12u64)
        );
        assert!(!CompactTarget(0x01123456).is_canonical());
        assert_eq!(
            CompactTarget(0x02123456).to_target().unwrap().0,
            U256::from(0x1234u64)
        );
        assert_eq!(
            CompactTarget(0x03123456).to_target().unwrap().0,
            U256::from(0x123456u64)
        );
        assert_eq!(
            CompactTarget(0x04123456).to_target().unwrap().0,
            U256::from(0x12345600u64)
        );
        // 0x80 needs the sign-bit dodge: 0x80 -> mantissa 0x008000, size 2.
        assert_eq!(
            Target(U256::from(0x80u64)).to_compact(),
            CompactTarget(0x02008000)
        );
        assert_eq!(
            Target(U256::from(0x12345600u64)).to_compact(),
            CompactTarget(0x04123456)
        );
        assert_eq!(Target(U256::ZERO).to_compact(), CompactTarget(0));
        assert_eq!(Target(U256::ZERO).round_compact(), Target(U256::ZERO));
    }

    #[test]
    fn non_canonical() {
        // 0x05008000 == 0x8000 << 16 == 0x80000000: the leading zero byte is required
        // to dodge the sign bit, so this one IS canonical.
        let t = CompactTarget(0x05008000).to_target().unwrap();
        assert_eq!(t.0, U256::from(0x8000_0000u64));
        assert!(CompactTarget(0x05008000).is_canonical());
        // 0x05000080 == 0x80 << 16 == 0x800000, canonical is 0x04008000.
        let t = CompactTarget(0x05000080).to_target().unwrap();
        assert_eq!(t.0, U256::from(0x80_0000u64));
        assert!(!CompactTarget(0x05000080).is_canonical());
        assert_eq!(t.to_compact(), CompactTarget(0x04008000));
        assert!(CompactTarget(0x04008000).is_canonical());
        // 0x04001234 == 0x1234 << 8 == 0x123400, canonical 0x03123400.
        let t = CompactTarget(0x04001234).to_target().unwrap();
        assert_eq!(t.0, U256::from(0x123400u64));
        assert!(!CompactTarget(0x04001234).is_canonical());
        assert_eq!(t.to_compact(), CompactTarget(0x03123400));
        assert!(CompactTarget(0x03123400).is_canonical());
        // Sign bit set on a zero mantissa: decodes to zero, never canonical.
        assert!(!CompactTarget(0x04800000).is_canonical());
    }

    #[test]
    fn met_by_and_difficulty() {
        let t = hex_target(BTC_GENESIS_HEX);
        let mut h = [0u8; 32];
        assert!(t.is_met_by(&h));
        h[4] = 0xff;
        h[5] = 0xff;
        assert!(t.is_met_by(&h));
        h[6] = 1;
        assert!(!t.is_met_by(&h));
        h = [0u8; 32];
        h[3] = 1;
        assert!(!t.is_met_by(&h));
        assert_eq!(t.difficulty(&t), U256::ONE);
        let half = Target(t.0 >> 1);
        assert_eq!(half.difficulty(&t), U256::from(2u64));
        assert_eq!(Target(U256::ZERO).difficulty(&t), U256::MAX);
    }

    #[test]
    fn work_edges() {
        assert_eq!(Target(U256::ZERO).work(), Work(U256::MAX));
        assert_eq!(Target(U256::ONE).work(), Work(U256::ONE << 255));
        assert_eq!(Target::MAX.work(), Work(U256::ONE));
        assert_eq!(Target(U256::MAX >> 1).work(), Work(U256::from(2u64)));
        let w = Work(U256::from(7u64));
        assert_eq!(w.checked_add(Work(U256::MAX)), None);
        assert_eq!(w.saturating_add(Work(U256::MAX)), Work(U256::MAX));
        assert_eq!(w.checked_add(w), Some(Work(U256::from(14u64))));
        assert_eq!(Work::from_be_bytes(w.to_be_bytes()), w);
        assert_eq!(w.to_be_bytes()[31], 7);
    }

    #[test]
    fn si_text_examples() {
        let s = |x: u64| si_text(U256::from(x));
        assert_eq!(s(0), "0");
        assert_eq!(s(912), "912");
        assert_eq!(s(999), "999");
        assert_eq!(s(1000), "1.00k");
        assert_eq!(s(18_432), "18.4k");
        assert_eq!(s(184_320), "184k");
        assert_eq!(s(3_216_000), "3.21M");
        assert_eq!(s(1_059_000_000), "1.05G");
        assert_eq!(s(4_295_032_833), "4.29G");
        assert_eq!(s(u64::MAX), "18.4E");
        assert_eq!(si_text(U256::from(10u64).pow(U256::from(30u64))), "1.00Q");
        assert_eq!(si_text(U256::from(10u64).pow(U256::from(33u64))), "1.00e33");
        assert_eq!(si_text(U256::MAX), "1.15e77");
    }

    // ---------------------------------------------------------------- LWMA

    const SPACING: u64 = 120;
    const WINDOW: u64 = 45;
    const LWMA: DifficultyRule = DifficultyRule::Lwma { window: WINDOW };

    fn limit() -> Target {
        CompactTarget(0x207fffff).to_target().unwrap()
    }

    /// Target giving `spacing` seconds per block at `hashrate` hashes/s.
    fn equilibrium_target(hashrate: u64) -> Target {
        let expected = U256::from(hashrate) * U256::from(SPACING);
        Target(U256::MAX / expected).round_compact()
    }

    fn solve_time(target: Target, hashrate: u64) -> u64 {
        let t = target.work().0 / U256::from(hashrate);
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    fn child_target_w(
        window: u64,
        chain: &[PowSample],
        child_height: u64,
        initial: Target,
    ) -> Target {
        let take = (window + 1) as usize;
        let tail = &chain[chain.len().saturating_sub(take)..];
        let rule = DifficultyRule::Lwma { window };
        next_target(rule, tail, child_height, SPACING, initial, limit())
    }

    fn child_target(chain: &[PowSample], child_height: u64, initial: Target) -> Target {
        child_target_w(WINDOW, chain, child_height, initial)
    }

    /// Mine `blocks` blocks with an LWMA window of `window`; `hashrate(height)` gives
    /// hashes/s and each block takes exactly its expected time `work(target) / hashrate`.
    /// Returns the chain, genesis first.
    fn simulate_w(
        window: u64,
        blocks: u64,
        hashrate: impl Fn(u64) -> u64,
        initial: Target,
    ) -> Vec<PowSample> {
        let mut chain = vec![PowSample {
            height: 0,
            time: 1_000_000,
            target: limit(),
        }];
        for h in 1..=blocks {
            let target = child_target_w(window, &chain, h, initial);
            assert!(target <= limit() && target.0 >= U256::ONE);
            assert!(target.to_compact().is_canonical());
            let parent = chain.last().unwrap();
            let time = parent.time + solve_time(target, hashrate(h));
            chain.push(PowSample {
                height: h,
                time,
                target,
            });
        }
        chain
    }

    fn simulate(blocks: u64, hashrate: impl Fn(u64) -> u64, initial: Target) -> Vec<PowSample> {
        simulate_w(WINDOW, blocks, hashrate, initial)
    }

    /// Solve time of each block, indexed by height (genesis gets 0).
    fn solve_times(chain: &[PowSample]) -> Vec<u64> {
        let mut v = vec![0];
        v.extend(chain.windows(2).map(|w| w[1].time - w[0].time));
        v
    }

    fn within_20pct(st: u64) -> bool {
        st * 10 >= SPACING * 8 && st * 10 <= SPACING * 12
    }

    /// Start at equilibrium for `base`, switch to `after` hashes/s at height 300, and
    /// require every solve time from `settle` blocks after the switch on (500 blocks)
    /// to be within +-20% of the spacing. Returns the first height after the switch
    /// whose solve time (and all later ones) is within the band.
    fn check_step(window: u64, base: u64, after: u64, settle: u64) -> u64 {
        let jump = 300;
        let initial = equilibrium_target(base);
        let chain = simulate_w(
            window,
            jump + 500,
            |h| if h < jump { base } else { after },
            initial,
        );
        let st = solve_times(&chain);
        for (h, &s) in st.iter().enumerate().take(jump as usize).skip(1) {
            assert!(within_20pct(s), "pre-switch height {h}: solvetime {s}");
        }
        // The switch must actually disturb the chain.
        assert!(!within_20pct(st[jump as usize]));
        let settled_from = st
            .iter()
            .rposition(|&s| !within_20pct(s))
            .map_or(0, |h| h as u64 + 1);
        assert!(
            settled_from <= jump + settle,
            "window {window}, {base} -> {after} H/s: settled only at height {settled_from}, \
             {} blocks after the switch (allowed {settle})",
            settled_from - jump
        );
        settled_from - jump
    }

    #[test]
    fn lwma_hashrate_drop_10x() {
        // The 6*spacing clamp caps the first solvetimes, yet this settles in 35 blocks
        // (window 30: 23).
        check_step(WINDOW, 1_000_000, 100_000, 60);
        check_step(30, 1_000_000, 100_000, 60);
    }

    #[test]
    fn lwma_hashrate_rise_10x() {
        // Averaging *targets* (LWMA-1) is a harmonic mean of difficulties, which lags
        // on a rise: with window 45 the deterministic chain settles 65 blocks after a
        // 10x rise (window 30: 44), i.e. within ~1.5 windows.
        check_step(WINDOW, 1_000_000, 10_000_000, 70);
        check_step(30, 1_000_000, 10_000_000, 60);
    }

    #[test]
    fn fixed_rule_returns_limit() {
        let l = limit();
        let hist = [PowSample {
            height: 5,
            time: 9,
            target: Target(U256::ONE),
        }];
        for h in [0, 1, 2, 3, 100, u64::MAX] {
            assert_eq!(
                next_target(DifficultyRule::Fixed, &hist, h, 60, Target(U256::ONE), l),
                l
            );
            assert_eq!(next_target(DifficultyRule::Fixed, &[], h, 0, l, l), l);
        }
    }

    #[test]
    fn early_heights_return_initial() {
        let initial = equilibrium_target(1000);
        let hist: Vec<PowSample> = (0..3)
            .map(|h| PowSample {
                height: h,
                time: h * 1_000_000,
                target: Target(U256::from(5u64)),
            })
            .collect();
        for h in 0..=2 {
            assert_eq!(
                next_target(LWMA, &hist, h, SPACING, initial, limit()),
                initial
            );
        }
        // Height 3 with only genesis + block 1... a single usable sample => initial.
        assert_eq!(
            next_target(LWMA, &hist[..2], 3, SPACING, initial, limit()),
            initial
        );
        // Window 0 => initial.
        let w0 = DifficultyRule::Lwma { window: 0 };
        assert_eq!(
            next_target(w0, &hist, 3, SPACING, initial, limit()),
            initial
        );
        // Genesis target is ignored: with samples 1 and 2, target comes from block 2 only.
        let got = next_target(LWMA, &hist, 3, SPACING, initial, limit());
        // Block 2 target 5, solvetime clamped to 6 * spacing -> 5 * 6 = 30.
        assert_eq!(got.0, U256::from(30u64));
    }

    #[test]
    fn huge_gap_is_bounded() {
        let initial = equilibrium_target(1_000_000);
        let mut chain = simulate(200, |_| 1_000_000, initial);
        let before = child_target(&chain, 201, initial);
        let parent = *chain.last().unwrap();
        chain.push(PowSample {
            height: 201,
            time: parent.time + 1_000_000_000,
            target: before,
        });
        let after = child_target(&chain, 202, initial);
        assert!(after > before);
        // One solvetime of at most 6*spacing with weight n: factor <= 1 + 10/(n+1).
        let n = U256::from(WINDOW);
        assert!(after.0 * (n + U256::ONE) <= before.0 * (n + U256::from(11u64)));

        // Every solvetime huge: at most 6x easier than the average target.
        let huge: Vec<PowSample> = (1..=46)
            .map(|h| PowSample {
                height: h,
                time: h * 10_000_000_000,
                target: initial,
            })
            .collect();
        let t = next_target(LWMA, &huge, 47, SPACING, initial, limit());
        assert!(t.0 <= initial.0 * U256::from(6u64));
        assert!(t.0 >= initial.0 * U256::from(5u64));
    }

    #[test]
    fn backwards_timestamps_do_not_panic() {
        let initial = equilibrium_target(1_000);
        let hist: Vec<PowSample> = (1..=46)
            .map(|h| PowSample {
                height: h,
                time: if h % 2 == 0 { 0 } else { u64::MAX },
                target: initial,
            })
            .collect();
        let t = next_target(LWMA, &hist, 47, SPACING, initial, limit());
        assert!(t <= limit() && t.0 >= U256::ONE && t.to_compact().is_canonical());
        // Zero spacing, huge window, max targets.
        let maxed: Vec<PowSample> = (1..=10)
            .map(|h| PowSample {
                height: h,
                time: h,
                target: Target::MAX,
            })
            .collect();
        let w = DifficultyRule::Lwma { window: u64::MAX };
        let t = next_target(w, &maxed, 11, 0, Target::MAX, Target::MAX);
        assert_eq!(t, Target::MAX.round_compact());
    }

    fn any_u256() -> impl Strategy<Value = U256> {
        (any::<[u8; 32]>(), 0usize..256).prop_map(|(b, s)| U256::from_be_bytes(b) >> s)
    }

    fn any_sample() -> impl Strategy<Value = PowSample> {
        (any::<u64>(), any::<u64>(), any_u256()).prop_map(|(height, time, t)| PowSample {
            height,
            time,
            target: Target(t),
        })
    }

    proptest! {
        #[test]
        fn compact_roundtrip(v in any_u256()) {
            prop_assume!(!v.is_zero());
            let t = Target(v);
            let c = t.to_compact();
            let back = c.to_target().unwrap();
            prop_assert!(back <= t);
            prop_assert!(c.is_canonical());
            prop_assert_eq!(t.round_compact(), back);
            prop_assert_eq!(back.round_compact(), back);
            prop_assert_eq!(back.to_compact(), c);
            prop_assert_eq!(c.0 & COMPACT_SIGN_BIT, 0);
        }

        #[test]
        fn to_target_total(bits in any::<u32>()) {
            let r = CompactTarget(bits).to_target();
            let _ = CompactTarget(bits).is_canonical();
            if let Ok(t) = r {
                prop_assert!(!t.0.is_zero());
                let _ = t.work();
            }
        }

        #[test]
        fn work_monotone(a in any_u256(), b in any_u256()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(Target(lo).work() >= Target(hi).work());
            prop_assert!(!Target(lo).work().0.is_zero());
        }

        #[test]
        fn si_text_total(v in any_u256()) {
            let s = si_text(v);
            prop_assert!(!s.is_empty() && s.len() <= 8);
        }

        #[test]
        fn next_target_total(
            hist in proptest::collection::vec(any_sample(), 0..60),
            child in any::<u64>(),
            spacing in any::<u64>(),
            window in 0u64..100,
            init in any_u256(),
            lim in any_u256(),
        ) {
            prop_assume!(!lim.is_zero());
            let limit = Target(lim).round_compact();
            let rule = DifficultyRule::Lwma { window };
            let t = next_target(rule, &hist, child, spacing, Target(init), limit);
            prop_assert!(t <= limit);
            prop_assert!(t.0 >= U256::ONE);
            prop_assert!(t.to_compact().is_canonical());
        }

        #[test]
        fn next_target_sorted_history(
            start in 0u64..1000,
            gaps in proptest::collection::vec(0u64..2000, 1..50),
            init in any_u256(),
        ) {
            prop_assume!(!init.is_zero());
            let initial = Target(init).round_compact().min(limit());
            let mut time = 5_000u64;
            let hist: Vec<PowSample> = gaps.iter().enumerate().map(|(i, g)| {
                time += g;
                PowSample { height: start + i as u64, time, target: initial }
            }).collect();
            let child = start + hist.len() as u64;
            let t = next_target(LWMA, &hist, child, SPACING, initial, limit());
            prop_assert!(t <= limit() && t.0 >= U256::ONE && t.to_compact().is_canonical());
        }
    }
}
