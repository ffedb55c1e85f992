//! Row changes as before/after diffs.

use maud::{html, Markup};

use super::layout::{link, time};
use crate::console::store::rows::ChangeRow;

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
                                @let changed = before != after && c.op == "update";
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

fn value(v: &Option<String>) -> Markup {
    html! {
        @match v { Some(s) => (s), None => span.null { "—" } }
    }
}
