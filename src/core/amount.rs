//! Amounts in base units (`Amount`, u64; 1 coin = 10^8 units) and their exact decimal text.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Base units per coin.
pub const COIN: u64 = 100_000_000;

/// An amount of base units. Arithmetic is checked: consensus never wraps.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Amount(u64);

/// Why a decimal amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountParseError {
    #[error("amount is empty")]
    Empty,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount {0:?} is not a decimal number")]
    NotDecimal(String),
    #[error("amount {0:?} has more than 8 decimal places")]
    TooPrecise(String),
    #[error("amount {0:?} is too large")]
    TooLarge(String),
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// `units` base units (any count is an amount; sums are checked where they are made).
    pub const fn from_units(units: u64) -> Amount {
        Amount(units)
    }
    /// The amount in base units.
    pub const fn units(self) -> u64 {
        self.0
    }

    /// Whole coins.
    pub const fn from_coins(c: u64) -> Amount {
        Amount(c * COIN)
    }
    pub fn checked_add(self, o: Amount) -> Option<Amount> {
        self.0.checked_add(o.0).map(Amount)
    }
    pub fn checked_sub(self, o: Amount) -> Option<Amount> {
        self.0.checked_sub(o.0).map(Amount)
    }
    /// Sum of amounts, `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(it: I) -> Option<Amount> {
        it.into_iter().try_fold(Amount::ZERO, Amount::checked_add)
    }

    /// Parse coins written as an exact decimal: `2`, `2.5`, `0.00000001`. At most 8 decimals, no
    /// sign, no exponent, no separators.
    pub fn parse_coins(s: &str) -> Result<Amount, AmountParseError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(AmountParseError::Empty);
        }
        if t.starts_with('-') {
            return Err(AmountParseError::Negative);
        }
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
            return Err(AmountParseError::NotDecimal(t.to_string()));
        }
        if frac.len() > 8 {
            return Err(AmountParseError::TooPrecise(t.to_string()));
        }
        let too_large = || AmountParseError::TooLarge(t.to_string());
        let w: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let mut f: u64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            f += u64::from(b - b'0') * 10u64.pow(7 - i as u32);
        }
        w.checked_mul(COIN)
            .and_then(|x| x.checked_add(f))
            .map(Amount)
            .ok_or_else(too_large)
    }
}

impl fmt::Display for Amount {
    /// Coins with the trailing zeros of the fraction removed: `312.5`, `0.00000001`, `50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / COIN;
        let frac = self.0 % COIN;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let s = format!("{frac:08}");
        write!(f, "{whole}.{}", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(Amount::parse_coins("2.5"), Ok(Amount(250_000_000)));
        assert_eq!(Amount::parse_coins("0.00000001"), Ok(Amount(1)));
        assert_eq!(Amount::parse_coins("7"), Ok(Amount(700_000_000)));
        assert_eq!(Amount::parse_coins(".5"), Ok(Amount(50_000_000)));
        assert_eq!(Amount::parse_coins("3."), Ok(Amount(300_000_000)));
    }

    #[test]
    fn refuses_bad_decimals() {
        use AmountParseError::*;
        assert_eq!(Amount::parse_coins(""), Err(Empty));
        assert_eq!(Amount::parse_coins("-1"), Err(Negative));
        assert!(matches!(Amount::parse_coins("1e3"), Err(NotDecimal(_))));
        assert!(matches!(Amount::parse_coins("1.2.3"), Err(NotDecimal(_))));
        assert!(matches!(Amount::parse_coins("."), Err(NotDecimal(_))));
        assert!(matches!(Amount::parse_coins("+1"), Err(NotDecimal(_))));
        assert!(matches!(
            Amount::parse_coins("0.000000001"),
            Err(TooPrecise(_))
        ));
        assert!(matches!(
            Amount::parse_coins("184467440738"),
            Err(TooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(v in any::<u64>()) {
            let a = Amount(v);
            prop_assert_eq!(Amount::parse_coins(&a.to_string()), Ok(a));
        }
        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = Amount::parse_coins(&s);
        }
    }
}
