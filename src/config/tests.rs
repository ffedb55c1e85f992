use super::*;

#[test]
fn urls_are_masked_in_debug() {
    let mut c = Config::default();
    c.upstream.url = "postgres://u:pg-secret@db:5432".into();
    c.audit.clickhouse_url = Some("http://u:ch-secret@ch:8123".into());
    let text = format!("{c:?}");
    assert!(
        !text.contains("pg-secret") && !text.contains("ch-secret"),
        "{text}"
    );
    assert!(text.contains("postgres://u:***@db:5432"), "{text}");
}

#[test]
fn defaults_validate() {
    Config::default().validate().unwrap();
}

#[test]
fn unknown_keys_are_rejected() {
    let e = Config::from_toml("listen = \"127.0.0.1:1\"\nlistne = 3\n").unwrap_err();
    assert!(e.0.contains("listne"), "{e}");
}

#[test]
fn secrets_are_hidden() {
    let c = Config::from_toml("[auth.role_passwords]\napp = \"hunter2\"\n").unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn upstream_url_forms() {
    let mut u = UpstreamConfig::default();
    for (url, host, port) in [
        ("postgres://db:5433", "db", 5433),
        ("postgresql://u:p@db/x", "db", 5432),
        ("postgres://[::1]:6000", "::1", 6000),
    ] {
        u.url = url.into();
        assert_eq!(u.host_port().unwrap(), (host.to_string(), port));
    }
    u.url = "http://x".into();
    assert!(matches!(
        u.host_port(),
        Err(UpstreamUrlError::Form {
            why: UrlFault::Scheme,
            ..
        })
    ));
    u.url = "postgres://u:pw@db:x".into();
    let e = u.host_port().unwrap_err();
    assert_eq!(e.to_string(), "upstream.url: invalid port \"x\"");
    assert!(std::error::Error::source(&e).is_some());
}

/// The example file documents every key with its default value.
#[test]
fn example_file_shows_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/pgtrail.example.toml");
    let example = Config::from_file(Path::new(path)).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let as_value = |c: &Config| toml::Value::try_from(c).unwrap();
    assert_eq!(as_value(&example), as_value(&Config::default()));
    let mut keys = Vec::new();
    collect_keys(&toml::Value::try_from(full_config()).unwrap(), &mut keys);
    for key in keys {
        assert!(
            text.contains(&format!("{key} =")),
            "pgtrail.example.toml does not mention {key}"
        );
    }
}

/// A config with every optional key set, so that every key is listed.
fn full_config() -> Config {
    let mut c = Config::default();
    c.admin_listen = Some(c.listen);
    c.upstream.ca_file = Some("x".into());
    c.upstream.server_name = Some("x".into());
    c.auth.users_file = Some("x".into());
    c.auth.default_db_role = Some("x".into());
    c.tls.cert_file = Some("x".into());
    c.tls.key_file = Some("x".into());
    c.tls.client_ca_file = Some("x".into());
    c.audit.file = Some("x".into());
    c.audit.clickhouse_url = Some("x".into());
    c.audit.instance_id = Some("x".into());
    c.audit.spool_dir = Some("x".into());
    c.audit.clickhouse.cluster = Some("x".into());
    c
}

fn collect_keys(v: &toml::Value, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            if v.is_table() {
                collect_keys(v, out);
            } else {
                out.push(k.clone());
            }
        }
    }
}

#[test]
fn clickhouse_names_are_identifiers() {
    let c = Config::from_toml("[audit.clickhouse]\ndatabase = \"a-b\"\n").unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .0
        .contains("audit.clickhouse.database"));
    let c = Config::from_toml("[audit.clickhouse]\ncluster = \"x y\"\n").unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .0
        .contains("audit.clickhouse.cluster"));
}

#[test]
fn proxy_mode_needs_users_file() {
    let c = Config::from_toml("[auth]\nmode = \"proxy\"\n").unwrap();
    assert!(c.validate().unwrap_err().0.contains("users_file"));
}

#[test]
fn fixed_instance_id_for_clickhouse_needs_the_spool() {
    let text = "[audit]\nclickhouse_url = \"http://ch:8123\"\ninstance_id = \"p1\"\n";
    let c = Config::from_toml(text).unwrap();
    assert!(c.validate().unwrap_err().0.contains("audit.spool_dir"));
    let c = Config::from_toml(&format!("{text}spool_dir = \"/var/lib/pgtrail\"\n")).unwrap();
    assert!(c.validate().is_ok());
}

#[test]
fn before_ack_needs_a_durable_destination() {
    let c = Config::from_toml("[audit]\ndurability = \"before_ack\"\n").unwrap();
    assert!(c.validate().unwrap_err().0.contains("before_ack"));
    let text = "[audit]\ndurability = \"before_ack\"\nclickhouse_url = \"http://ch:8123\"\n";
    let c = Config::from_toml(text).unwrap();
    assert!(c.validate().unwrap_err().0.contains("spool_dir"));
    let c =
        Config::from_toml("[audit]\ndurability = \"before_ack\"\nfile = \"a.jsonl\"\n").unwrap();
    assert!(c.validate().is_ok());
}
