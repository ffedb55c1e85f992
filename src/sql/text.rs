//! Lossless text for the record.

/// Statement text as recorded: lossless. Valid UTF-8 is stored as is;
/// otherwise `escaped` is set, backslashes are doubled and invalid bytes
/// appear as `\xNN`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementText {
    pub text: String,
    pub escaped: bool,
}

impl StatementText {
    pub fn from_bytes(b: &[u8]) -> Self {
        let (text, escaped) = crate::text::lossless(b);
        StatementText {
            text: text.into_owned(),
            escaped,
        }
    }

    /// The original bytes back.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.escaped {
            crate::text::unescape(&self.text)
        } else {
            self.text.as_bytes().to_vec()
        }
    }
}
