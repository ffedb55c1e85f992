//! PostgreSQL wire protocol 3.0 without I/O: framing, read-only views of the
//! few messages pgtrail inspects, and builders for the messages it writes.
//!
//! Frames are kept as the bytes that arrived; views decode fields on demand
//! from those bytes, so forwarding never re-encodes anything.

pub mod backend;
pub mod build;
pub mod frame;
pub mod frontend;
pub mod reader;
pub mod sqlstate;
pub mod startup;
pub mod tag;

pub use frame::{Frame, FrameError, HEADER_LEN};
pub use reader::{Malformed, MessageReader};
