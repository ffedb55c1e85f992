//! [`Analyzer`]: the thread-safe analyzer with the fingerprint-keyed cache
//! (the lookups, here), its LRUs ([`cache`]), template entries
//! ([`template`]), a hit's answer (`answer`) and per-thread buffers
//! (`scratch`).

mod answer;
pub(crate) mod cache;
mod scratch;
mod template;

use crate::sql::analysis::{Analysis, AnalyzerConfig, Parser};
use crate::sql::analyze::complete;
use crate::sql::analyze::pre::{lex_opts, make_pre, significant};
use crate::sql::fingerprint::normalize::{self, Fnv};
use crate::sql::lex::lexer::{self, LexOptions, Token};
use crate::sql::lex::split::{self, StmtSpan};
use cache::CacheStats;
use scratch::{Scratch, SCRATCH};
use std::cell::Cell;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use template::{template_key, Template, TEMPLATE_MAX_BYTES, TEMPLATE_MAX_TOKENS};

/// What the cache stores for one text.
#[derive(Clone)]
struct Entry {
    analyses: Arc<[Analysis]>,
    /// Signature of the literal kinds ([`normalize::normalize_sig_kinds`]).
    kinds: u64,
}

/// Where a text's answer is remembered besides the shape cache: the
/// exact-text key and, when the text should become a template, its key.
struct Keys {
    exact: u64,
    template: Option<u64>,
}

/// A text seen whole and the analyses it got (the `Arc` of its shape's
/// entry), so sending the same text again costs one hash and a compare.
#[derive(Clone)]
struct Exact {
    text: Box<[u8]>,
    analyses: Arc<[Analysis]>,
}

/// Thread-safe analyzer with a bounded cache (`Send + Sync`).
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

    /// Analyze a text through the cache: an exact text seen before costs a
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

    /// Analyze one statement of a Query string: the text is split once
    /// (as [`statement_ranges`](crate::sql::statement_ranges) splits it),
    /// `pick` chooses among the statements' byte ranges, and the chosen
    /// statement is analyzed as [`analyze`](Self::analyze) would analyze
    /// its text alone, from the tokens already lexed. `None` analyses the
    /// whole text. Returns the range analyzed and its analyses.
    pub fn analyze_picked(
        &self,
        text: &[u8],
        pick: impl FnOnce(&[Range<usize>]) -> Option<usize>,
    ) -> (Range<usize>, Arc<[Analysis]>) {
        let mut s = SCRATCH.with(Cell::take);
        let out = self.analyze_picked_in(text, pick, &mut s);
        s.trim();
        SCRATCH.with(|c| c.set(s));
        out
    }

    fn analyze_picked_in(
        &self,
        text: &[u8],
        pick: impl FnOnce(&[Range<usize>]) -> Option<usize>,
        s: &mut Scratch,
    ) -> (Range<usize>, Arc<[Analysis]>) {
        // the split of `statement_ranges`: default lexer options
        s.toks.clear();
        s.escapes = lexer::tokenize_into(text, LexOptions::default(), &mut s.toks);
        split::split_into(text, &s.toks, &mut s.spans);
        s.ranges.clear();
        s.ranges
            .extend(s.spans.iter().map(|span| span.byte_start..span.byte_end));
        // the analyzer's own lexer options differ: lex the text analyzed again
        let same_lexing = lex_opts(&self.cfg) == LexOptions::default();
        let Some(span) = pick(&s.ranges).and_then(|i| s.spans.get(i).copied()) else {
            let out = if same_lexing {
                self.lookup(text, s, true)
            } else {
                self.analyze_in(text, s)
            };
            return (0..text.len(), out);
        };
        let range = span.byte_start..span.byte_end;
        let part = &text[range.clone()];
        if !same_lexing {
            return (range, self.analyze_in(part, s));
        }
        // the statement's tokens, as lexing `part` alone gives them
        s.toks.truncate(span.tok_end);
        s.toks.drain(..span.tok_start);
        for t in s.toks.iter_mut() {
            t.start -= span.byte_start;
            t.end -= span.byte_start;
        }
        s.spans.clear();
        s.spans.push(StmtSpan {
            tok_start: 0,
            tok_end: s.toks.len(),
            byte_start: 0,
            byte_end: part.len(),
            max_depth: span.max_depth,
        });
        (range, self.lookup(part, s, true))
    }

    fn analyze_in(&self, text: &[u8], s: &mut Scratch) -> Arc<[Analysis]> {
        s.toks.clear();
        s.spans.clear();
        self.lookup(text, s, false)
    }

    /// The exact-text lookup, then (after lexing `text` into `s.toks`
    /// unless `lexed`, when `s.spans` holds its statements too) the
    /// template and shape lookups; a miss is analyzed and cached.
    fn lookup(&self, text: &[u8], s: &mut Scratch, lexed: bool) -> Arc<[Analysis]> {
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
        if !lexed {
            s.escapes = lexer::tokenize_into(text, lex_opts(&self.cfg), &mut s.toks);
        }
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
                if let Some(hit) = self.template_hit(text, s, &t, exact_key) {
                    return hit;
                }
                need_template = false; // another text of the key keeps it
            }
        }
        if !lexed {
            split::split_into(text, &s.toks, &mut s.spans);
        }
        let (key, kinds) = self.shape_key(text, s);
        let keys = Keys {
            exact: exact_key,
            template: need_template.then_some(template_key),
        };
        if cacheable {
            if let Some(e) = self.cache.get(key).filter(|e| e.kinds == kinds) {
                if let Some(hit) = answer::answer_from(self.cfg.redaction, text, s, &e.analyses) {
                    self.cache.hit();
                    self.remember(text, s, &hit, &e.analyses, &keys);
                    return hit;
                }
            }
            self.cache.miss();
        }
        let out = self.analyze_new(text, s);
        if cacheable {
            let analyses: Arc<[Analysis]> = out
                .iter()
                .map(|a| Analysis {
                    cached: true,
                    ..a.clone()
                })
                .collect();
            self.remember(text, s, &analyses, &analyses, &keys);
            self.cache.put(key, Entry { analyses, kinds });
        }
        out
    }

    /// The template's analyses for `text`, if its tokens match but for
    /// literals and its statements take the same paths.
    fn template_hit(
        &self,
        text: &[u8],
        s: &Scratch,
        t: &Template,
        exact_key: u64,
    ) -> Option<Arc<[Analysis]>> {
        let same_flags = || {
            t.spans
                .iter()
                .zip(t.flags.iter())
                .all(|(span, &f)| self.span_flags(text, &s.toks[span.tok_start..span.tok_end]) == f)
        };
        if !(t.matches(text, &s.toks) && same_flags()) {
            return None;
        }
        self.cache.hit();
        let fps = t.analyses.iter().map(|a| a.fingerprint);
        let hit = answer::with_texts(
            self.cfg.redaction,
            text,
            &s.toks,
            &t.spans,
            fps,
            &t.analyses,
        );
        if Arc::ptr_eq(&hit, &t.analyses) {
            self.put_exact(exact_key, text, &hit);
        }
        Some(hit)
    }

    /// Normalise every statement of `s.spans` into `s.norm` / `s.stmts`;
    /// the shape cache's key and the literal-kinds signature of the text.
    fn shape_key(&self, text: &[u8], s: &mut Scratch) -> (u64, u64) {
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
            if s.escapes {
                // literals whose escapes decide their validity: by their bytes
                for t in st.iter().filter(|t| t.escapes) {
                    kinds.bytes(text.get(t.start..t.end).unwrap_or_default());
                    kinds.byte(0xff);
                }
            }
        }
        // texts of one shape with other literal classes get their own entry
        key.bytes(&kinds.0.to_le_bytes());
        (key.0, kinds.0)
    }

    /// Put `text`'s answer `hit` in the exact-text LRU (when it is the
    /// shape's entry `entry` itself) and in the template LRU (when asked).
    fn remember(
        &self,
        text: &[u8],
        s: &Scratch,
        hit: &Arc<[Analysis]>,
        entry: &Arc<[Analysis]>,
        keys: &Keys,
    ) {
        if Arc::ptr_eq(hit, entry) {
            self.put_exact(keys.exact, text, hit);
        }
        if let Some(key) = keys.template {
            self.put_template(key, text, s, hit);
        }
    }

    /// Every statement of `s.spans` analyzed (normalised texts from
    /// `s.norm`); the fallback counters follow the paths taken.
    fn analyze_new(&self, text: &[u8], s: &Scratch) -> Arc<[Analysis]> {
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
        out
    }

    /// What else decides a statement's path besides its shape: whether its
    /// bytes are valid UTF-8, whether it exceeds `max_parse_bytes` and
    /// whether it ends in an unterminated string, dollar quote, quoted
    /// identifier or comment ([`Token::open`], set by the lexer: only a
    /// statement's last token can be open).
    fn span_flags(&self, text: &[u8], st: &[Token]) -> u8 {
        let start = st.first().map_or(0, |t| t.start);
        let last = st.last();
        let end = last.map_or(0, |t| t.end);
        let bytes = text.get(start..end).unwrap_or_default();
        u8::from(std::str::from_utf8(bytes).is_ok())
            | u8::from(bytes.len() > self.cfg.max_parse_bytes) << 1
            | u8::from(last.is_some_and(|t| t.open)) << 2
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

    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            fallback_pg_query: self.fallback_pg_query.load(Ordering::Relaxed),
            fallback_lexer: self.fallback_lexer.load(Ordering::Relaxed),
            ..self.cache.stats()
        }
    }
}
