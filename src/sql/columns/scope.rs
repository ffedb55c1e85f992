//! The relations visible at a point of the walk: one level per query
//! (SELECT, UPDATE, ...), innermost last, as PostgreSQL scopes them.

use super::Candidate;

/// A relation in FROM (or an UPDATE/DELETE/MERGE target).
#[derive(Debug, Clone)]
pub(super) struct Rel {
    /// The alias, or the relation's own (last) name when it has none.
    pub(super) visible: String,
    /// The full name as written (`schema.table`), when no alias hides it.
    pub(super) full: Option<String>,
    /// The relation as written; `None` for subqueries, CTEs, functions.
    pub(super) table: Option<String>,
}

impl Rel {
    pub(super) fn table(name: String, alias: Option<String>) -> Rel {
        let last = name.rsplit('.').next().unwrap_or(&name).to_string();
        match alias {
            Some(a) => Rel {
                visible: a,
                full: None,
                table: Some(name),
            },
            None => Rel {
                visible: last,
                full: Some(name.clone()),
                table: Some(name),
            },
        }
    }

    pub(super) fn derived(alias: String) -> Rel {
        Rel {
            visible: alias,
            full: None,
            table: None,
        }
    }

    fn answers_to(&self, qualifier: &str) -> bool {
        self.visible == qualifier || self.full.as_deref() == Some(qualifier)
    }
}

#[derive(Debug, Default)]
pub(super) struct Scopes {
    levels: Vec<Vec<Rel>>,
}

impl Scopes {
    pub(super) fn push(&mut self) {
        self.levels.push(Vec::new());
    }

    pub(super) fn pop(&mut self) {
        self.levels.pop();
    }

    pub(super) fn add(&mut self, rel: Rel) {
        if let Some(level) = self.levels.last_mut() {
            level.push(rel);
        }
    }

    /// The innermost relation `qualifier` names: `Some(None)` for a
    /// derived one, `None` when nothing in scope answers to it.
    pub(super) fn qualified(&self, qualifier: &str) -> Option<Option<&str>> {
        self.levels
            .iter()
            .rev()
            .flat_map(|level| level.iter())
            .find(|r| r.answers_to(qualifier))
            .map(|r| r.table.as_deref())
    }

    /// The relations of the innermost level (for `*`).
    pub(super) fn innermost(&self) -> &[Rel] {
        self.levels.last().map_or(&[], Vec::as_slice)
    }

    /// Every relation an unqualified column could come from.
    pub(super) fn candidates(&self) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (level, rels) in self.levels.iter().rev().enumerate() {
            let level = u16::try_from(level).unwrap_or(u16::MAX);
            for r in rels {
                out.push(Candidate {
                    level,
                    table: r.table.clone(),
                });
            }
        }
        out
    }
}
