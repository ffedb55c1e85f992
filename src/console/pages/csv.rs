//! CSV of a compliance view (RFC 4180: fields with a comma, quote or line
//! break are quoted, quotes doubled). A field starting with `=`, `+`, `@`,
//! a tab or a carriage return gets a leading `'`, so that a spreadsheet
//! does not run a statement text as a formula.

use crate::audit::record::format_micros;
use crate::console::store::compliance::ViewRows;
use crate::console::store::rows::Side;

fn field(out: &mut String, value: &str) {
    let guarded = value.starts_with(['=', '+', '@', '\t', '\r']);
    let quote = guarded || value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

/// A column's side in a CSV cell: its value, `NULL`, or `-` when the
/// record does not have it.
fn side(v: &Side) -> &str {
    match v {
        Some(Some(s)) => s,
        Some(None) => "NULL",
        None => "-",
    }
}

pub fn view_csv(rows: &ViewRows) -> String {
    let mut out = String::new();
    match rows {
        ViewRows::Logins(r) => {
            line(
                &mut out,
                &[
                    "time",
                    "user",
                    "database",
                    "client_addr",
                    "client_port",
                    "application_name",
                    "auth_method",
                    "reason",
                    "session_id",
                ],
            );
            for e in r {
                line(
                    &mut out,
                    &[
                        &format_micros(e.event_time),
                        &e.user,
                        &e.database,
                        &e.client_addr,
                        &e.client_port.to_string(),
                        &e.application_name,
                        &e.auth_method,
                        &e.reason,
                        &e.session_id,
                    ],
                );
            }
        }
        ViewRows::Statements(r) => {
            line(
                &mut out,
                &[
                    "time",
                    "user",
                    "db_role",
                    "database",
                    "client_addr",
                    "session_id",
                    "kind",
                    "objects_written",
                    "success",
                    "sqlstate",
                    "statement",
                    "instance_id",
                    "seq",
                ],
            );
            for s in r {
                line(
                    &mut out,
                    &[
                        &format_micros(s.event_time),
                        &s.user,
                        &s.db_role,
                        &s.database,
                        &s.client_addr,
                        &s.session_id,
                        &s.kind,
                        &s.objects_written.join(" "),
                        &s.success.to_string(),
                        &s.sqlstate,
                        &s.statement,
                        &s.instance_id,
                        &s.seq.to_string(),
                    ],
                );
            }
        }
        ViewRows::Changes(r) => {
            line(
                &mut out,
                &[
                    "commit_time",
                    "database",
                    "schema",
                    "table",
                    "op",
                    "row_key",
                    "user",
                    "attribution",
                    "changed",
                ],
            );
            for c in r {
                let changed: Vec<String> = c
                    .diff()
                    .into_iter()
                    .map(|(n, b, a)| format!("{n}: {} -> {}", side(&b), side(&a)))
                    .collect();
                line(
                    &mut out,
                    &[
                        &format_micros(c.commit_time),
                        &c.database,
                        &c.schema,
                        &c.table,
                        &c.op,
                        &c.row_key(),
                        &c.user,
                        &c.attribution,
                        &changed.join("; "),
                    ],
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_guards() {
        let mut s = String::new();
        line(&mut s, &["a", "b,c", "say \"hi\"", "=HYPERLINK()", "x\ny"]);
        assert_eq!(
            s,
            "a,\"b,c\",\"say \"\"hi\"\"\",\"'=HYPERLINK()\",\"x\ny\"\r\n"
        );
    }
}
