//! Failed ClickHouse requests, told apart by what fixes them.
//!
//! Both kinds are retried and the batch is kept (nothing is ever dropped);
//! the difference is how soon, how loudly, and which counter rises:
//!
//! - **retryable**: the network, timeouts, and server errors that pass on
//!   their own (too many parts, memory limit, replica or Keeper trouble,
//!   read-only replica, ...): backoff from 100 ms to 5 s.
//! - **permanent**: errors that need a person: schema mismatch (unknown
//!   table, database or column, type mismatch), data the server cannot
//!   parse, credentials and access rights, unknown settings. Logged at
//!   error level on every attempt with the server's code and message,
//!   counted in `pgtrail_clickhouse_batches_rejected_total`, retried once
//!   soon (the schema is re-applied before each attempt, so a dropped
//!   table heals itself) and then every 30 s.
//!
//! ClickHouse puts its error code in the response body (`Code: 60.
//! DB::Exception: ...`); the `clickhouse` crate hands that body over in
//! `BadResponse`.

use std::fmt;

/// Server error codes that need a person (see the module doc).
const PERMANENT_CODES: &[u32] = &[
    8,   // THERE_IS_NO_COLUMN
    10,  // NOT_FOUND_COLUMN_IN_BLOCK
    16,  // NO_SUCH_COLUMN_IN_TABLE
    20,  // NUMBER_OF_COLUMNS_DOESNT_MATCH
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA
    36,  // BAD_ARGUMENTS
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    44,  // ILLEGAL_COLUMN
    47,  // UNKNOWN_IDENTIFIER
    53,  // TYPE_MISMATCH
    60,  // UNKNOWN_TABLE
    62,  // SYNTAX_ERROR
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    81,  // UNKNOWN_DATABASE
    115, // UNKNOWN_SETTING
    117, // INCORRECT_DATA
    164, // READONLY (the user may not write)
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    194, // REQUIRED_PASSWORD
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// What was being done, then the error as ClickHouse or the crate said it.
    pub message: String,
    /// ClickHouse's error code, when the server answered with one.
    pub code: Option<u32>,
    pub permanent: bool,
}

impl SendError {
    /// `context` says what was attempted (`INSERT INTO statements`).
    pub fn new(context: &str, e: &clickhouse::error::Error) -> SendError {
        use clickhouse::error::Error as E;
        let message = format!("{context}: {e}");
        let (code, permanent) = match e {
            E::Network(_) | E::TimedOut => (None, false),
            E::BadResponse(body) => match server_code(body) {
                Some(code) => (Some(code), PERMANENT_CODES.contains(&code)),
                // A body without a code: an HTTP proxy or a server restarting.
                None => (None, false),
            },
            // Rows the crate could not encode or decode: a code/schema mismatch.
            _ => (None, true),
        };
        SendError {
            message,
            code,
            permanent,
        }
    }

    /// A failure outside the crate (an answer pgtrail cannot use).
    pub fn other(message: String, permanent: bool) -> SendError {
        SendError {
            message,
            code: None,
            permanent,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The number after `Code: ` in a ClickHouse error body.
pub fn server_code(body: &str) -> Option<u32> {
    let rest = &body[body.find("Code: ")? + "Code: ".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_read_from_the_body() {
        let body = "Code: 60. DB::Exception: Table pgtrail.statements doesn't exist. (UNKNOWN_TABLE) (version 24.8.1)";
        assert_eq!(server_code(body), Some(60));
        assert_eq!(
            server_code("bad response: Code: 252, e.displayText() = ..."),
            Some(252)
        );
        assert_eq!(server_code("502 Bad Gateway"), None);
        assert_eq!(server_code("Code: x"), None);
    }

    #[test]
    fn schema_and_auth_errors_are_permanent_load_errors_are_not() {
        let e = |body: &str| {
            SendError::new(
                "INSERT INTO statements",
                &clickhouse::error::Error::BadResponse(body.into()),
            )
        };
        assert!(e("Code: 60. DB::Exception: Table x doesn't exist").permanent);
        assert!(e("Code: 516. DB::Exception: default: Authentication failed").permanent);
        assert!(!e("Code: 252. DB::Exception: Too many parts (300)").permanent);
        assert!(!e("Code: 241. DB::Exception: Memory limit exceeded").permanent);
        assert!(!e("<html>502 Bad Gateway</html>").permanent);
        let timeout = SendError::new("INSERT", &clickhouse::error::Error::TimedOut);
        assert!(!timeout.permanent && timeout.code.is_none());
        let data = SendError::new("INSERT", &clickhouse::error::Error::NotEnoughData);
        assert!(data.permanent);
    }
}
