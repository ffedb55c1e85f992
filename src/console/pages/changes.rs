//! Row changes as before/after diffs.

use maud::{html, Markup};

use super::layout::{link, time};
use crate::console::store::rows::{ChangeRow, Side};

/// One table per change: its key, then each column before and after
/// (changed values marked).
pub fn change_table(changes: &[&ChangeRow]) -> Markup {
    html! {
        div.changes {
            @for c in changes {
                @let name = format!("{}.{}", c.schema, c.table);
                // The first key column (the primary key's, usually) follows
                // the row through its changes.
                @let first_key = c.row_key().split(',').next().unwrap_or("").to_string();
                div.change data-op=(c.op) {
                    div.changehead {
                        span.op { (c.op) } " "
                        a href=(link("/table", &[("name", &name), ("key", &first_key)])) title="this row's history" { (name) " " (c.row_key()) }
                        " · committed " (time(c.commit_time))
                        " · " span.attr title="attribution" { (c.attribution) }
                    }
                    table.diff {
                        thead { tr { th { "column" } th { "before" } th { "after" } } }
                        tbody {
                            @for (col, before, after) in c.diff() {
                                // Only where both sides were recorded.
                                @let changed = c.op == "update" && before.is_some() && after.is_some() && before != after;
                                tr.changed[changed] {
                                    td { (col) }
                                    td.before { (value(&before)) }
                                    td.after { (value(&after)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn value(v: &Side) -> Markup {
    html! {
        @match v {
            Some(Some(s)) => (s),
            Some(None) => span.null { "NULL" },
            None => span.null title="not in the record" { "—" },
        }
    }
}
