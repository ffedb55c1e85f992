//! [`Analyzer`]: the thread-safe analyser with the fingerprint-keyed cache.

use crate::sql::analyze::{complete, lex_opts, make_pre, significant};
use crate::sql::analyzer::template::{
    template_key, Template, TEMPLATE_MAX_BYTES, TEMPLATE_MAX_TOKENS,
};
use crate::sql::fingerprint::normalize::{self, Fnv};
pub(crate) mod cache;
mod template;

use crate::sql::analysis::{Analysis, AnalyzerConfig, Parser};
use crate::sql::analyzer::cache::CacheStats;
use crate::sql::fingerprint::redact;
use crate::sql::lex::lexer::{self, Token};
use crate::sql::lex::split::{self, StmtSpan};
use crate::sql::text::StatementText;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Per-thread buffers of [`Analyzer::analyze`], reused so that a cache
/// lookup allocates nothing. Taken out of the thread-local for the call
/// (a nested call would just start with empty buffers).
#[derive(Default)]
struct Scratch {
    toks: Vec<Token>,
    spans: Vec<StmtSpan>,
    /// Non-comment tokens of the current statement (when it has comments).
    sig: Vec<Token>,
    /// Normalised texts of all statements, back to back.
    norm: String,
    /// Per statement: end of its normalised text in `norm`, fingerprint.
    stmts: Vec<(usize, u64)>,
    /// The template key's input.
    skel: Vec<u8>,
}

/// Buffers above this many elements are dropped after the call (a huge
/// text must not pin its memory in every thread that saw it).
const SCRATCH_KEEP: usize = 1 << 14;

impl Scratch {
    fn trim(&mut self) {
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
    }
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Is `st` what [`StatementText::from_bytes`] makes of `red`? (Without
/// building it: an unescaped text is exactly its bytes.)
fn same_text(st: &StatementText, red: &[u8]) -> bool {
    if st.escaped {
        StatementText::from_bytes(red) == *st
    } else {
        st.text.as_bytes() == red
    }
}

/// What the cache stores for one text.
#[derive(Clone)]
struct Entry {
    analyses: Arc<[Analysis]>,
    /// Signature of the literal kinds ([`normalize::normalize_sig_kinds`]).
    kinds: u64,
}

/// A text seen whole and the analyses it got (the `Arc` of its shape's
/// entry), so sending the same text again costs one hash and a compare.
#[derive(Clone)]
struct Exact {
    text: Box<[u8]>,
    analyses: Arc<[Analysis]>,
}

/// Thread-safe analyser with a bounded cache (`Send + Sync`).
pub struct Analyzer {
    cfg: AnalyzerConfig,
    cache: cache::Cache<Entry>,
    /// Exact texts (key: seeded [`cache::text_hash`]), same capacity.
    exact: cache::Cache<Exact>,
    /// Templates (key: [`template_key`]), same capacity.
    templates: cache::Cache<Arc<Template>>,
    seed: u64,
    /// Statements parsed by pg_query and by the lexer path (`/metrics`).
    fallback_pg_query: AtomicU64,
    fallback_lexer: AtomicU64,
}

impl Analyzer {
    pub fn new(cfg: AnalyzerConfig) -> Self {
        let cache = cache::Cache::new(cfg.cache_entries);
        let exact = cache::Cache::new(cfg.cache_entries);
        let templates = cache::Cache::new(cfg.cache_entries);
        Analyzer {
            cfg,
            cache,
            exact,
            templates,
            seed: cache::random_seed(),
            fallback_pg_query: AtomicU64::new(0),
            fallback_lexer: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.cfg
    }

    /// Analyse a text through the cache: an exact text seen before costs a
    /// hash and a compare; a text matching a template one lexer pass; one
    /// of a known shape a lexer pass and normalisation (see the module doc).
    /// The lookup allocates nothing (per-thread buffers).
    pub fn analyze(&self, text: &[u8]) -> Arc<[Analysis]> {
        let mut s = SCRATCH.with(Cell::take);
        let out = self.analyze_in(text, &mut s);
        s.trim();
        SCRATCH.with(|c| c.set(s));
        out
    }

    fn analyze_in(&self, text: &[u8], s: &mut Scratch) -> Arc<[Analysis]> {
        let cacheable = self.cfg.cache_entries > 0 && text.len() <= self.cfg.cache_max_text_bytes;
        let exact_key = if cacheable {
            cache::text_hash(self.seed, text)
        } else {
            0
        };
        if cacheable {
            let found = self.exact.get_with(exact_key, |e| {
                (*e.text == *text).then(|| e.analyses.clone())
            });
            if let Some(Some(hit)) = found {
                self.cache.hit();
                return hit;
            }
        }
        s.toks.clear();
        lexer::tokenize_into(text, lex_opts(&self.cfg), &mut s.toks);
        let templated =
            cacheable && text.len() <= TEMPLATE_MAX_BYTES && s.toks.len() <= TEMPLATE_MAX_TOKENS;
        let template_key = if templated {
            template_key(self.seed, text, &s.toks, &mut s.skel)
        } else {
            0
        };
        let mut need_template = templated;
        if templated {
            if let Some(t) = self.templates.get(template_key) {
                let same_flags = || {
                    t.spans.iter().zip(t.flags.iter()).all(|(span, &f)| {
                        self.span_flags(text, &s.toks[span.tok_start..span.tok_end]) == f
                    })
                };
                if t.matches(text, &s.toks) && same_flags() {
                    self.cache.hit();
                    let fps = t.analyses.iter().map(|a| a.fingerprint);
                    let hit = self.with_texts(text, &s.toks, &t.spans, fps, &t.analyses);
                    if Arc::ptr_eq(&hit, &t.analyses) {
                        self.put_exact(exact_key, text, &hit);
                    }
                    return hit;
                }
                need_template = false; // another text of the key keeps it
            }
        }
        split::split_into(text, &s.toks, &mut s.spans);
        s.norm.clear();
        s.stmts.clear();
        let mut key = Fnv::new();
        let mut kinds = Fnv::new();
        for span in &s.spans {
            let st = &s.toks[span.tok_start..span.tok_end];
            let sig = significant(st, &mut s.sig);
            let (fp, k) = normalize::normalize_sig_kinds(text, sig, &mut s.norm);
            s.stmts.push((s.norm.len(), fp));
            key.bytes(&fp.to_le_bytes());
            kinds.bytes(&k.to_le_bytes());
            kinds.byte(self.span_flags(text, st));
        }
        // texts of one shape with other literal classes get their own entry
        key.bytes(&kinds.0.to_le_bytes());
        let (key, kinds) = (key.0, kinds.0);
        if cacheable {
            if let Some(e) = self.cache.get(key).filter(|e| e.kinds == kinds) {
                if let Some(hit) = self.answer_from(text, s, &e.analyses) {
                    self.cache.hit();
                    if Arc::ptr_eq(&hit, &e.analyses) {
                        self.put_exact(exact_key, text, &hit);
                    }
                    if need_template {
                        self.put_template(template_key, text, s, &hit);
                    }
                    return hit;
                }
            }
            self.cache.miss();
        }
        let mut from = 0;
        let out: Arc<[Analysis]> = s
            .spans
            .iter()
            .zip(&s.stmts)
            .map(|(&span, &(end, fp))| {
                let st = &s.toks[span.tok_start..span.tok_end];
                let normalized = s.norm[from..end].to_string();
                from = end;
                let p = make_pre(text, st, span, normalized, fp, &self.cfg);
                complete(text, &s.toks, p, &self.cfg, true)
            })
            .collect();
        for a in out.iter() {
            match a.parser {
                Parser::Sqlparser => {}
                Parser::PgQuery => _ = self.fallback_pg_query.fetch_add(1, Ordering::Relaxed),
                Parser::Lexer => _ = self.fallback_lexer.fetch_add(1, Ordering::Relaxed),
            }
        }
        if cacheable {
            let analyses: Arc<[Analysis]> = out
                .iter()
                .map(|a| Analysis {
                    cached: true,
                    ..a.clone()
                })
                .collect();
            self.put_exact(exact_key, text, &analyses);
            if need_template {
                self.put_template(template_key, text, s, &analyses);
            }
            self.cache.put(key, Entry { analyses, kinds });
        }
        out
    }

    /// What else decides a statement's path besides its shape: whether its
    /// bytes are valid UTF-8 and whether it exceeds `max_parse_bytes`.
    fn span_flags(&self, text: &[u8], st: &[Token]) -> u8 {
        let start = st.first().map_or(0, |t| t.start);
        let end = st.last().map_or(0, |t| t.end);
        let bytes = text.get(start..end).unwrap_or_default();
        u8::from(std::str::from_utf8(bytes).is_ok())
            | u8::from(bytes.len() > self.cfg.max_parse_bytes) << 1
    }

    fn put_template(&self, key: u64, text: &[u8], s: &Scratch, analyses: &Arc<[Analysis]>) {
        let t = Template {
            text: text.into(),
            toks: s.toks.as_slice().into(),
            spans: s.spans.as_slice().into(),
            flags: s
                .spans
                .iter()
                .map(|span| self.span_flags(text, &s.toks[span.tok_start..span.tok_end]))
                .collect(),
            analyses: analyses.clone(),
        };
        self.templates.put(key, Arc::new(t));
    }

    fn put_exact(&self, key: u64, text: &[u8], analyses: &Arc<[Analysis]>) {
        self.exact.put(
            key,
            Exact {
                text: text.into(),
                analyses: analyses.clone(),
            },
        );
    }

    /// The result of a hit, if the cached entry has the same normalised
    /// statements (so a fingerprint collision is never a hit). The entry
    /// itself when the statement texts (after redaction) are the same too;
    /// otherwise copies with this text's statement text and fingerprints.
    fn answer_from(
        &self,
        text: &[u8],
        s: &Scratch,
        cached: &Arc<[Analysis]>,
    ) -> Option<Arc<[Analysis]>> {
        if cached.len() != s.stmts.len() {
            return None;
        }
        let mut from = 0;
        for (a, &(end, _)) in cached.iter().zip(&s.stmts) {
            if a.normalized.as_bytes() != &s.norm.as_bytes()[from..end] {
                return None;
            }
            from = end;
        }
        let fps = s.stmts.iter().map(|&(_, fp)| fp);
        Some(self.with_texts(text, &s.toks, &s.spans, fps, cached))
    }

    /// `cached` with this text's statement texts (after redaction) and
    /// fingerprints `fps`: `cached` itself when they are all the same.
    /// `spans` index `toks`; their byte ranges are taken from `toks`.
    fn with_texts(
        &self,
        text: &[u8],
        toks: &[Token],
        spans: &[StmtSpan],
        fps: impl Iterator<Item = u64> + Clone,
        cached: &Arc<[Analysis]>,
    ) -> Arc<[Analysis]> {
        let redacted = |span: &StmtSpan| {
            let st = &toks[span.tok_start..span.tok_end];
            let start = st.first().map_or(span.byte_start, |t| t.start);
            let end = st.last().map_or(span.byte_end, |t| t.end);
            redact::redact(text, st, start, end, self.cfg.redaction)
        };
        // the first statement whose text (or fingerprint) differs
        let mut diverge = None;
        for (i, ((a, span), fp)) in cached.iter().zip(spans).zip(fps.clone()).enumerate() {
            let red = redacted(span);
            if !(a.fingerprint == fp && same_text(&a.statement, &red)) {
                diverge = Some((i, red));
                break;
            }
        }
        let Some((first, red)) = diverge else {
            return cached.clone();
        };
        let mut first_red = Some(red);
        cached
            .iter()
            .zip(spans)
            .zip(fps)
            .enumerate()
            .map(|(i, ((a, span), fp))| {
                if i < first {
                    return a.clone();
                }
                let red = match first_red.take() {
                    Some(r) => r,
                    None => redacted(span),
                };
                Analysis {
                    kind: a.kind,
                    class: a.class,
                    crud: a.crud,
                    audit_class: a.audit_class,
                    objects_read: a.objects_read.clone(),
                    objects_written: a.objects_written.clone(),
                    functions: a.functions.clone(),
                    parser: a.parser,
                    parser_note: a.parser_note.clone(),
                    fingerprint: fp,
                    normalized: a.normalized.clone(),
                    statement: StatementText::from_bytes(&red),
                    locking: a.locking,
                    object_type: a.object_type,
                    explain_inner: a.explain_inner,
                    explain_analyze: a.explain_analyze,
                    cached: true,
                }
            })
            .collect()
    }

    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            fallback_pg_query: self.fallback_pg_query.load(Ordering::Relaxed),
            fallback_lexer: self.fallback_lexer.load(Ordering::Relaxed),
            ..self.cache.stats()
        }
    }
}
