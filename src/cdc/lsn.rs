//! Write-ahead log positions (`pg_lsn`): a 64-bit byte offset that
//! PostgreSQL writes as two hexadecimal halves, `X/Y`.

use std::fmt;
use std::str::FromStr;

/// A WAL position. `Lsn(0)` (`0/0`) is PostgreSQL's "invalid" LSN, which
/// `START_REPLICATION` reads as "from the slot's confirmed position".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    pub const INVALID: Lsn = Lsn(0);

    pub fn is_valid(self) -> bool {
        self.0 != 0
    }
}

impl fmt::Display for Lsn {
    /// Upper-case hex without padding, as `pg_lsn_out` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Text that is not `X/Y` with 1 to 8 hex digits on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsnParseError(pub String);

impl fmt::Display for LsnParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid LSN {:?}: expected X/Y in hexadecimal", self.0)
    }
}

impl std::error::Error for LsnParseError {}

impl FromStr for Lsn {
    type Err = LsnParseError;

    /// Accepts what `pg_lsn_in` accepts: either case, no sign, no spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LsnParseError(s.to_string());
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let half = |h: &str| {
            let hex = !h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
            if hex {
                u32::from_str_radix(h, 16).map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        Ok(Lsn((u64::from(half(hi)?) << 32) | u64::from(half(lo)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_orders_numerically() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn, Lsn(0x16_B374_D848));
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn::INVALID);
        assert_eq!("ffffffff/ffffffff".parse::<Lsn>().unwrap(), Lsn(u64::MAX));
        assert_eq!(Lsn(0x1_0000_0000).to_string(), "1/0");
        // Textual order is not numeric order: 0/A0 < 1/0 though "0/A0" > "1/0"
        // would never be compared as text.
        assert!("0/A0".parse::<Lsn>().unwrap() < "1/0".parse::<Lsn>().unwrap());
        assert!("0/9".parse::<Lsn>().unwrap() < "0/10".parse::<Lsn>().unwrap());
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in [
            "",
            "0",
            "/0",
            "0/",
            "1/2/3",
            "g/0",
            "123456789/0",
            "+1/0",
            " 1/0",
            "0/-1",
        ] {
            assert_eq!(
                bad.parse::<Lsn>(),
                Err(LsnParseError(bad.to_string())),
                "{bad:?}"
            );
        }
    }
}
