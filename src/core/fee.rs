//! [`FeeRate`]: what a transaction pays per byte of its encoding. People and the API speak in
//! base units per byte; inside, a rate is kept per 1,000 bytes so that a computed rate (fee ÷
//! size) orders exactly with integers. The field is private: a rate is made per byte, per
//! kilobyte, or from a fee and a size, never by hand-scaling a number.

use super::amount::Amount;
use std::fmt;

/// A fee rate (see the module doc). `Display` gives base units per byte with one decimal when
/// it has one: `2 /B`, `2.5 /B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeeRate(u64);

/// Why a per-byte fee rate was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeeRateError {
    #[error("at least 1 base unit per byte")]
    Zero,
    #[error("too large")]
    TooLarge,
}

impl FeeRate {
    /// The lowest rate the mempool relays: 1 base unit per byte.
    pub const MIN_RELAY: FeeRate = FeeRate(1_000);
    /// The wallet's rate when none is given: 2 base units per byte.
    pub const DEFAULT: FeeRate = FeeRate(2_000);

    /// `units` base units per byte (0 is allowed here; see [`FeeRate::parse_per_byte`] for
    /// what a person may ask for). `None` when it does not fit.
    pub const fn per_byte(units: u64) -> Option<FeeRate> {
        match units.checked_mul(1_000) {
            Some(k) => Some(FeeRate(k)),
            None => None,
        }
    }
    /// `units` base units per 1,000 bytes.
    pub const fn per_kb(units: u64) -> FeeRate {
        FeeRate(units)
    }
    /// A rate someone asked for, in whole base units per byte: at least 1.
    pub fn parse_per_byte(units: u64) -> Result<FeeRate, FeeRateError> {
        match units {
            0 => Err(FeeRateError::Zero),
            u => FeeRate::per_byte(u).ok_or(FeeRateError::TooLarge),
        }
    }
    /// The rate a fee of `fee` pays for `size` bytes (rounded down).
    pub fn of(fee: Amount, size: usize) -> FeeRate {
        FeeRate(fee.units().saturating_mul(1_000) / (size.max(1) as u64))
    }
    /// The fee for `size` bytes at this rate (rounded up).
    pub fn fee_for(self, size: usize) -> Amount {
        Amount::from_units(self.0.saturating_mul(size as u64).div_ceil(1_000))
    }
    /// Base units per 1,000 bytes.
    pub const fn per_kb_units(self) -> u64 {
        self.0
    }
    /// Whole base units per byte (rounded down).
    pub const fn per_byte_units(self) -> u64 {
        self.0 / 1_000
    }
    /// How many times `other` this rate is (rounded down; `other` of zero counts as 1).
    pub fn times(self, other: FeeRate) -> u64 {
        self.0 / other.0.max(1)
    }
    /// Per byte with one decimal when it has one: `2`, `2.5` (no unit).
    pub fn per_byte_text(self) -> String {
        let whole = self.0 / 1_000;
        let tenth = self.0 % 1_000 / 100;
        if tenth == 0 {
            whole.to_string()
        } else {
            format!("{whole}.{tenth}")
        }
    }
}

impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} /B", self.per_byte_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_byte_and_per_kb_agree_and_round_the_right_way() {
        assert_eq!(FeeRate::per_byte(2), Some(FeeRate::per_kb(2_000)));
        assert_eq!(FeeRate::per_byte(u64::MAX), None);
        assert_eq!(FeeRate::parse_per_byte(0), Err(FeeRateError::Zero));
        assert_eq!(
            FeeRate::parse_per_byte(u64::MAX / 10),
            Err(FeeRateError::TooLarge)
        );
        assert_eq!(FeeRate::parse_per_byte(1), Ok(FeeRate::MIN_RELAY));
        // 1,001 units for 1,000 bytes: 1.001 per byte, shown as 1.
        let r = FeeRate::of(Amount::from_units(1_001), 1_000);
        assert_eq!(r.per_kb_units(), 1_001);
        assert_eq!(r.per_byte_units(), 1);
        assert_eq!(r.to_string(), "1 /B");
        assert_eq!(FeeRate::per_kb(2_500).to_string(), "2.5 /B");
        // Fees round up: 2.5 per byte for 3 bytes is 7.5, so 8.
        assert_eq!(FeeRate::per_kb(2_500).fee_for(3), Amount::from_units(8));
        assert_eq!(
            FeeRate::of(Amount::from_units(10), 0),
            FeeRate::per_kb(10_000)
        );
        assert_eq!(FeeRate::per_kb(200_000).times(FeeRate::DEFAULT), 100);
    }
}
