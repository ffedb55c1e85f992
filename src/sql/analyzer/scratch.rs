//! The per-thread buffers an `Analyzer` call works in.

use crate::sql::lex::{StmtSpan, Token};
use std::cell::Cell;
use std::ops::Range;

/// Per-thread buffers of `Analyzer::analyze`, reused so that a cache
/// lookup allocates nothing. Taken out of the thread-local for the call
/// (a nested call would just start with empty buffers).
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) toks: Vec<Token>,
    /// Whether a token of `toks` is marked `Token::escapes`.
    pub(super) escapes: bool,
    pub(super) spans: Vec<StmtSpan>,
    /// Non-comment tokens of the current statement (when it has comments).
    pub(super) sig: Vec<Token>,
    /// Normalised texts of all statements, back to back.
    pub(super) norm: String,
    /// Per statement: end of its normalised text in `norm`, fingerprint.
    pub(super) stmts: Vec<(usize, u64)>,
    /// The template key's input.
    pub(super) skel: Vec<u8>,
    /// Byte ranges of the statements, for `Analyzer::analyze_picked`.
    pub(super) ranges: Vec<Range<usize>>,
}

/// Buffers above this many elements are dropped after the call (a huge
/// text must not pin its memory in every thread that saw it).
const SCRATCH_KEEP: usize = 1 << 14;

impl Scratch {
    pub(super) fn trim(&mut self) {
        if self.toks.capacity() > SCRATCH_KEEP {
            self.toks = Vec::new();
        }
        if self.sig.capacity() > SCRATCH_KEEP {
            self.sig = Vec::new();
        }
        if self.spans.capacity() > SCRATCH_KEEP {
            self.spans = Vec::new();
        }
        if self.stmts.capacity() > SCRATCH_KEEP {
            self.stmts = Vec::new();
        }
        if self.norm.capacity() > SCRATCH_KEEP * 8 {
            self.norm = String::new();
        }
        if self.skel.capacity() > SCRATCH_KEEP * 8 {
            self.skel = Vec::new();
        }
        if self.ranges.capacity() > SCRATCH_KEEP {
            self.ranges = Vec::new();
        }
    }
}

thread_local! {
    pub(super) static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}
