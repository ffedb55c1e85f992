//! Unit tests of the whole analysis, in files of their own: the statement
//! table ([`cases`] and [`cases_ddl`], one [`cases::Case`] a row), table, kinds,
//! paths and cache ([`analyze`]), property tests over statement templates
//! ([`props`]), robustness and the pg_query corpus oracle ([`robust`]),
//! one statement of a Query string analyzed ([`picked`]), texts ending
//! unterminated never answered from a valid text's entry ([`unterminated`]).
//! Modules' own small tests stay in a `mod tests` at the end of their file.

mod analyze;
pub(crate) mod cases;
mod cases_ddl;
mod picked;
mod props;
mod robust;
mod unterminated;

/// Every case: [`cases::DML_CASES`] then [`cases_ddl::DDL_CASES`].
pub(super) static CASES: std::sync::LazyLock<Vec<cases::Case>> = std::sync::LazyLock::new(|| {
    cases::DML_CASES
        .iter()
        .chain(cases_ddl::DDL_CASES)
        .copied()
        .collect()
});
