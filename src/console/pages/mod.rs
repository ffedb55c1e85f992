//! The console's pages, one file per page (`layout`: the frame and the
//! formatting helpers; `changes`: before/after diffs; `csv`: exports).

pub mod access;
pub mod changes;
pub mod compliance;
pub mod csv;
pub mod layout;
pub mod overview;
pub mod people;
pub mod sessions;
pub mod statements;
pub mod tables;
