//! The texts of a statement computed from its tokens alone: the normalised
//! text and its fingerprint ([`normalize`], with IN/ARRAY/VALUES lists
//! collapsed by [`collapse`]) and the statement text after redaction
//! ([`redact`]).

mod collapse;
pub(crate) mod normalize;
pub(crate) mod redact;
