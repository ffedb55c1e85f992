//! Objects from tokens alone, for statements no parser accepted (or that
//! were too large, too deep or not UTF-8): DML targets after
//! INSERT INTO / UPDATE / DELETE FROM / COPY / TRUNCATE, relations after
//! FROM and JOIN (outside function-call parentheses, CTE names dropped) and
//! identifiers followed by `(` as functions. A best effort, flagged by
//! `parser = "lexer"`.

use crate::sql::kind::classify::KwClass;
use crate::sql::kind::Kind;
use crate::sql::lex::{identifier, is_keyword_before_paren, kw as is_kw, Tok, Token};
use crate::sql::parsers::Extract;

fn part(src: &[u8], t: &Token) -> Option<String> {
    let name = identifier(src, t)?;
    Some(
        String::from_utf8(name)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// Qualified name at `i`: returns (name, index after it).
fn name_at(src: &[u8], toks: &[Token], mut i: usize) -> Option<(String, usize)> {
    while toks.get(i).is_some_and(|t| {
        is_kw(src, t, "only") || is_kw(src, t, "table") || is_kw(src, t, "lateral")
    }) {
        i += 1;
    }
    let mut name = part(src, toks.get(i)?)?;
    i += 1;
    while toks.get(i).is_some_and(|t| t.kind == Tok::Dot) {
        match toks.get(i + 1).and_then(|t| part(src, t)) {
            Some(p) => {
                name.push('.');
                name.push_str(&p);
                i += 2;
            }
            None => break,
        }
    }
    Some((name, i))
}

/// Objects and functions of one statement (`toks`: its significant tokens)
/// by token heuristics.
pub(crate) fn extract(src: &[u8], toks: &[Token], kw: KwClass) -> Extract {
    let mut ex = Extract::default();
    let kind = if kw.kind == Kind::Explain {
        kw.inner
    } else {
        kw.kind
    };
    let target_at = dml_target(src, toks, kind, &mut ex);
    let ctes = cte_names(src, toks);
    from_and_calls(src, toks, kind, target_at, &ctes, &mut ex);
    ex
}

/// The DML target (TRUNCATE's list) into `ex`; the index of its first
/// token, if there is one.
fn dml_target(src: &[u8], toks: &[Token], kind: Kind, ex: &mut Extract) -> Option<usize> {
    let find = |w: &str| toks.iter().position(|t| is_kw(src, t, w));
    let t = match kind {
        Kind::Insert => find("into").map(|i| i + 1),
        Kind::Update => find("update").map(|i| i + 1),
        Kind::Delete => find("delete").and_then(|d| {
            toks.get(d + 1)
                .filter(|t| is_kw(src, t, "from"))
                .map(|_| d + 2)
        }),
        Kind::Merge => find("into").map(|i| i + 1),
        Kind::CopyFrom | Kind::CopyTo => find("copy").map(|i| i + 1),
        Kind::Truncate => find("truncate").map(|i| i + 1),
        _ => None,
    }?;
    let (n, mut next) = name_at(src, toks, t)?;
    if kind == Kind::CopyTo {
        ex.reads.push((t as i64, n));
    } else {
        ex.writes.push((t as i64, n));
        ex.nested_kind = Some(kind);
    }
    while kind == Kind::Truncate && toks.get(next).is_some_and(|t| t.kind == Tok::Comma) {
        match name_at(src, toks, next + 1) {
            Some((n, nx)) => {
                ex.writes.push((next as i64, n));
                next = nx;
            }
            None => break,
        }
    }
    Some(t)
}

/// CTE names: `name AS (` or `name (cols) AS (` after WITH.
fn cte_names(src: &[u8], toks: &[Token]) -> Vec<String> {
    let mut ctes: Vec<String> = Vec::new();
    if !toks.first().is_some_and(|t| is_kw(src, t, "with")) {
        return ctes;
    }
    for (i, t) in toks.iter().enumerate() {
        if is_kw(src, t, "as")
            && toks.get(i + 1).is_some_and(|n| {
                n.kind == Tok::LParen || is_kw(src, n, "not") || is_kw(src, n, "materialized")
            })
        {
            let mut j = i;
            if j > 0 && toks[j - 1].kind == Tok::RParen {
                // skip column list
                let mut d = 0usize;
                let floor = j.saturating_sub(256); // bounded look-back
                while j > floor {
                    j -= 1;
                    match toks[j].kind {
                        Tok::RParen => d += 1,
                        Tok::LParen => {
                            d = d.saturating_sub(1);
                            if d == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            if let Some(n) = j.checked_sub(1).and_then(|k| part(src, &toks[k])) {
                ctes.push(n);
            }
        }
    }
    ctes
}

/// Relations after FROM and JOIN outside function parentheses (not the
/// DML target at `target_at`, not CTE names, not table functions) and
/// identifiers followed by `(` as functions, into `ex`.
fn from_and_calls(
    src: &[u8],
    toks: &[Token],
    kind: Kind,
    target_at: Option<usize>,
    ctes: &[String],
    ex: &mut Extract,
) {
    let mut parens: Vec<bool> = Vec::new(); // true: function-call parens
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            Tok::LParen => {
                let f = i > 0
                    && toks[i - 1].kind == Tok::Ident
                    && !is_keyword_before_paren(&src[toks[i - 1].start..toks[i - 1].end]);
                if f {
                    if let Some(n) = part(src, &toks[i - 1]) {
                        let mut name = n;
                        if i >= 3 && toks[i - 2].kind == Tok::Dot {
                            if let Some(s) = part(src, &toks[i - 3]) {
                                name = format!("{s}.{name}");
                            }
                        }
                        ex.functions.push((i as i64, name));
                    }
                }
                parens.push(f);
            }
            Tok::RParen => {
                parens.pop();
            }
            Tok::Ident
                if (is_kw(src, t, "from") || is_kw(src, t, "join"))
                    && !parens.last().copied().unwrap_or(false) =>
            {
                if target_at == Some(i + 1)
                    || kind == Kind::CopyFrom
                    || kind == Kind::CopyTo && is_kw(src, t, "from")
                {
                    continue;
                }
                if let Some((n, after)) = name_at(src, toks, i + 1) {
                    if toks.get(after).is_some_and(|t| t.kind == Tok::LParen) {
                        continue; // table function
                    }
                    if !ctes.contains(&n) || n.contains('.') {
                        ex.reads.push((i as i64, n));
                    }
                }
            }
            _ => {}
        }
    }
}

/// PL/pgSQL words that may precede `(` without being calls.
const PLPGSQL_NOT_FUNCS: &[&str] = &[
    "if",
    "elsif",
    "while",
    "loop",
    "foreach",
    "for",
    "return",
    "raise",
    "perform",
    "execute",
    "using",
    "format",
    "into",
    "strict",
    "query",
    "next",
    "exit",
    "continue",
    "assert",
    "get",
    "diagnostics",
    "open",
    "fetch",
    "close",
    "declare",
    "begin",
    "end",
    "exception",
];

/// Body of a string literal token: quotes, prefixes and dollar tags removed.
fn literal_body(b: &[u8]) -> &[u8] {
    if b.first() == Some(&b'$') {
        let Some(close) = b.iter().skip(1).position(|&c| c == b'$').map(|p| p + 1) else {
            return &[];
        };
        let tag = &b[..=close];
        let rest = &b[close + 1..];
        return rest.strip_suffix(tag).unwrap_or(rest);
    }
    let Some(q) = b.iter().position(|&c| c == b'\'') else {
        return &[];
    };
    let rest = &b[q + 1..];
    rest.strip_suffix(b"'").unwrap_or(rest)
}

/// Functions called inside the string bodies of a statement (a DO block's
/// PL/pgSQL, and SQL strings inside it, up to three levels): a token-level
/// heuristic so that `pg_read_file` in `DO $$ ... $$` still stands out.
pub(crate) fn body_functions(src: &[u8], toks: &[Token], depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    if depth > 3 {
        return out;
    }
    for t in toks.iter().filter(|t| t.kind == Tok::Str) {
        let body = literal_body(&src[t.start..t.end]);
        let inner: Vec<Token> =
            crate::sql::lex::tokenize(body, crate::sql::lex::LexOptions::default())
                .into_iter()
                .filter(|t| !t.kind.is_trivia())
                .collect();
        for (i, it) in inner.iter().enumerate() {
            if it.kind != Tok::Ident || !inner.get(i + 1).is_some_and(|n| n.kind == Tok::LParen) {
                continue;
            }
            let w = &body[it.start..it.end];
            if is_keyword_before_paren(w)
                || PLPGSQL_NOT_FUNCS
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k.as_bytes()))
            {
                continue;
            }
            if let Some(mut name) = part(body, it) {
                if i >= 2 && inner[i - 1].kind == Tok::Dot {
                    if let Some(s) = part(body, &inner[i - 2]) {
                        name = format!("{s}.{name}");
                    }
                }
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        for f in body_functions(body, &inner, depth + 1) {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}
