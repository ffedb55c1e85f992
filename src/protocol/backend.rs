//! Read-only views of the server messages the audit and the session need.
//! Each takes the message body (the frame without its 5-byte header).

use bytes::Bytes;

use super::reader::{Malformed, MessageReader};

/// CommandComplete ('C'): the command tag, e.g. `INSERT 0 5`.
pub fn command_tag(body: &[u8]) -> Result<&[u8], Malformed> {
    MessageReader::new(body).cstr()
}

/// Rows affected or returned, from a command tag (`SELECT 5`, `INSERT 0 5`,
/// `UPDATE 5`, `COPY 5`, ...); `None` for tags without a count.
pub fn rows_from_tag(tag: &[u8]) -> Option<u64> {
    const COUNTED: [&[u8]; 8] = [
        b"SELECT", b"INSERT", b"UPDATE", b"DELETE", b"MERGE", b"COPY", b"FETCH", b"MOVE",
    ];
    let verb = tag.split(|&b| b == b' ').next()?;
    if !COUNTED.contains(&verb) {
        return None;
    }
    let last = tag.rsplit(|&b| b == b' ').next()?;
    std::str::from_utf8(last).ok()?.parse().ok()
}

/// The fields of an ErrorResponse ('E') or NoticeResponse ('N') we keep.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    /// Non-localized severity (`V`), falling back to the localized one (`S`).
    pub severity: String,
    pub code: String,
    pub message: String,
    /// Character position of the error in the query string (`P`), 1-based.
    pub position: Option<u32>,
}

impl ErrorFields {
    pub fn is_fatal(&self) -> bool {
        matches!(self.severity.as_str(), "FATAL" | "PANIC")
    }
}

pub fn error_fields(body: &[u8]) -> Result<ErrorFields, Malformed> {
    let mut r = MessageReader::new(body);
    let mut fields = ErrorFields::default();
    loop {
        let code = r.u8()?;
        if code == 0 {
            return Ok(fields);
        }
        let value = crate::text::lossless(r.cstr()?).0;
        match code {
            b'S' if fields.severity.is_empty() => fields.severity = value.into_owned(),
            b'V' => fields.severity = value.into_owned(),
            b'C' => fields.code = value.into_owned(),
            b'M' => fields.message = value.into_owned(),
            b'P' => fields.position = value.parse().ok(),
            _ => {}
        }
    }
}

/// The transaction status a ReadyForQuery reports, and `Unknown` for a
/// statement whose ReadyForQuery had not arrived when its record was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// `I`: no transaction open.
    Idle,
    /// `T`: in a transaction block.
    InBlock,
    /// `E`: in a failed transaction block (statements refused until ROLLBACK).
    Failed,
    Unknown,
}

impl TxnStatus {
    /// As records write it: `I`, `T`, `E`, or empty when unknown.
    pub fn label(self) -> &'static str {
        match self {
            TxnStatus::Idle => "I",
            TxnStatus::InBlock => "T",
            TxnStatus::Failed => "E",
            TxnStatus::Unknown => "",
        }
    }
}

/// ReadyForQuery ('Z'): the transaction status; any byte but `I`, `T` or
/// `E` is malformed.
pub fn ready_status(body: &[u8]) -> Result<TxnStatus, Malformed> {
    match MessageReader::new(body).u8()? {
        b'I' => Ok(TxnStatus::Idle),
        b'T' => Ok(TxnStatus::InBlock),
        b'E' => Ok(TxnStatus::Failed),
        _ => Err(Malformed("unknown ReadyForQuery status")),
    }
}

/// BackendKeyData ('K'): process id and secret key.
pub fn backend_key(body: &[u8]) -> Result<(i32, Vec<u8>), Malformed> {
    let mut r = MessageReader::new(body);
    let pid = r.i32()?;
    let secret = r.remaining().to_vec();
    if secret.len() < 4 {
        return Err(Malformed("BackendKeyData without secret"));
    }
    Ok((pid, secret))
}

/// ParameterStatus ('S').
pub fn parameter_status(body: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let mut r = MessageReader::new(body);
    Ok((r.cstr()?, r.cstr()?))
}

/// Authentication request ('R'): the request code and its data.
pub fn auth_request(body: &[u8]) -> Result<(i32, &[u8]), Malformed> {
    let mut r = MessageReader::new(body);
    let code = r.i32()?;
    Ok((code, r.remaining()))
}

/// Authentication request codes.
pub mod auth {
    pub const OK: i32 = 0;
    pub const CLEARTEXT: i32 = 3;
    pub const MD5: i32 = 5;
    pub const SASL: i32 = 10;
    pub const SASL_CONTINUE: i32 = 11;
    pub const SASL_FINAL: i32 = 12;
}

/// The SASL mechanism names offered in an AuthenticationSASL request.
pub fn sasl_mechanisms(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0).filter(|m| !m.is_empty()).collect()
}

/// A DataRow body as its columns (`None` for NULL), sharing `body`.
pub fn data_row(body: Bytes) -> Result<Vec<Option<Bytes>>, Malformed> {
    let short = Malformed("DataRow too short");
    let count = body.get(..2).ok_or(short)?;
    let count = usize::try_from(i16::from_be_bytes([count[0], count[1]]))
        .map_err(|_| Malformed("negative column count"))?;
    let mut at = 2;
    let mut row = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let len = body.get(at..at + 4).ok_or(short)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        let Ok(len) = usize::try_from(len) else {
            row.push(None);
            continue;
        };
        if body.len() - at < len {
            return Err(short);
        }
        row.push(Some(body.slice(at..at + len)));
        at += len;
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_row_columns() {
        let body = Bytes::from_static(b"\x00\x02\x00\x00\x00\x01a\xff\xff\xff\xff");
        let row = data_row(body.clone()).unwrap();
        assert_eq!(row, vec![Some(Bytes::from_static(b"a")), None]);
        assert!(data_row(body.slice(..8)).is_err());
        assert!(data_row(Bytes::from_static(b"\x00\x01\x00\x00\x00\x09a")).is_err());
    }

    #[test]
    fn rows_from_tags() {
        assert_eq!(rows_from_tag(b"SELECT 5"), Some(5));
        assert_eq!(rows_from_tag(b"INSERT 0 7"), Some(7));
        assert_eq!(rows_from_tag(b"COPY 100"), Some(100));
        assert_eq!(rows_from_tag(b"CREATE TABLE"), None);
        assert_eq!(rows_from_tag(b"BEGIN"), None);
    }

    #[test]
    fn error_fields_prefer_nonlocalized_severity() {
        let body = b"SERREUR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0P15\0\0";
        let f = error_fields(body).unwrap();
        assert_eq!(f.severity, "ERROR");
        assert_eq!(f.code, "42P01");
        assert_eq!(f.position, Some(15));
        assert!(!f.is_fatal());
        assert!(error_fields(b"SERROR\0").is_err());
    }

    #[test]
    fn ready_for_query_status_is_one_of_three() {
        assert_eq!(ready_status(b"I"), Ok(TxnStatus::Idle));
        assert_eq!(ready_status(b"T"), Ok(TxnStatus::InBlock));
        assert_eq!(ready_status(b"E"), Ok(TxnStatus::Failed));
        assert!(ready_status(b"X").is_err());
        assert!(ready_status(b"").is_err());
        assert_eq!(TxnStatus::Unknown.label(), "");
    }
}
