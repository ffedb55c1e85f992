//! `docs/configuration.md` stays in sync with `pgtrail.example.toml`: every
//! key of the example file (commented-out keys included) has an entry, every
//! entry is a key of the example file, and the example file with every key
//! set is a valid pgtrail configuration. No servers are started.

use std::collections::BTreeSet;
use std::path::Path;

/// Tables whose entries are names chosen by the user (documented as
/// `<table>.<name>`), not configuration keys.
const MAP_TABLES: &[(&str, &str)] = &[
    ("auth.role_passwords", "<role>"),
    ("identity.roles", "<role>"),
];

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The example file with commented-out keys (`# key = value`) turned into
/// settings, so that keys without a default count too.
fn example_with_every_key() -> String {
    read("pgtrail.example.toml")
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_assignment(rest) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `name = value` where `name` is a bare TOML key.
fn is_assignment(s: &str) -> bool {
    match s.split_once(" = ") {
        Some((name, _)) => {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }
        None => false,
    }
}

fn collect(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let Some((_, placeholder)) = MAP_TABLES.iter().find(|(t, _)| *t == path) {
            out.insert(format!("{path}.{placeholder}"));
        } else if let toml::Value::Table(inner) = value {
            collect(&path, inner, out);
        } else {
            out.insert(path);
        }
    }
}

fn example_keys() -> BTreeSet<String> {
    let table: toml::Table = example_with_every_key()
        .parse()
        .expect("pgtrail.example.toml (every key uncommented) is valid TOML");
    let mut keys = BTreeSet::new();
    collect("", &table, &mut keys);
    keys
}

/// First cells of the reference's table rows: `| \`section.key\` | ...`.
fn documented_keys() -> BTreeSet<String> {
    read("docs/configuration.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(key, _)| key.to_string())
        .collect()
}

#[test]
fn every_example_key_is_documented() {
    let documented = documented_keys();
    let missing: Vec<_> = example_keys()
        .into_iter()
        .filter(|k| !documented.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "keys of pgtrail.example.toml without an entry in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn every_documented_key_is_in_the_example() {
    let keys = example_keys();
    let unknown: Vec<_> = documented_keys()
        .into_iter()
        .filter(|k| !keys.contains(k))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md documents keys that pgtrail.example.toml does not have: {unknown:?}"
    );
}

#[test]
fn example_with_every_key_is_a_valid_config() {
    // deny_unknown_fields: a key pgtrail does not know fails here.
    if let Err(e) = toml::from_str::<pgtrail::config::Config>(&example_with_every_key()) {
        panic!("pgtrail.example.toml with every key uncommented: {e}");
    }
}

#[test]
fn reference_has_the_keys_it_should() {
    // Guards the parsers above against silently finding nothing.
    let keys = example_keys();
    for k in [
        "listen",
        "admin_listen",
        "upstream.ca_file",
        "auth.role_passwords.<role>",
        "audit.clickhouse.cluster",
        "log.format",
    ] {
        assert!(keys.contains(k), "example keys lack {k}: {keys:?}");
    }
    assert!(documented_keys().len() >= 40);
}
