use super::*;

fn change(sql: &str) -> Option<RoleChange> {
    role_change(sql.as_bytes())
}

fn set_role(role: Option<&str>, local: bool) -> Option<RoleChange> {
    Some(RoleChange::SetRole {
        role: role.map(String::from),
        local,
    })
}

#[test]
fn reads_role_statements() {
    assert_eq!(change("SET ROLE admin"), set_role(Some("admin"), false));
    assert_eq!(
        change("set role \"Ad\"\"min\""),
        set_role(Some("Ad\"min"), false)
    );
    assert_eq!(change("SET role = 'x y'"), set_role(Some("x y"), false));
    assert_eq!(
        change("SET SESSION role TO Admin"),
        set_role(Some("admin"), false)
    );
    assert_eq!(
        change("/* c */ SET LOCAL ROLE a"),
        set_role(Some("a"), true)
    );
    assert_eq!(change("SET ROLE NONE"), set_role(None, false));
    assert_eq!(
        change("SET ROLE E'ad\\'min'"),
        set_role(Some("ad'min"), false)
    );
    assert_eq!(
        change("SET ROLE $x$admin$x$"),
        set_role(Some("admin"), false)
    );
    assert_eq!(
        change("SET ROLE U&\"\\0061dmin\""),
        set_role(Some("U&\"\\0061dmin\""), false)
    );
    assert_eq!(
        change("SET ROLE DEFAULT"),
        Some(RoleChange::ResetRole { local: false })
    );
    assert_eq!(
        change("RESET ROLE"),
        Some(RoleChange::ResetRole { local: false })
    );
    assert_eq!(
        change("SET SESSION AUTHORIZATION bob"),
        Some(RoleChange::SetSession {
            user: Some("bob".into()),
            local: false
        })
    );
    assert_eq!(
        change("SET LOCAL SESSION AUTHORIZATION DEFAULT"),
        Some(RoleChange::SetSession {
            user: None,
            local: true
        })
    );
    assert_eq!(
        change("SET session_authorization = 'bob'"),
        Some(RoleChange::SetSession {
            user: Some("bob".into()),
            local: false
        })
    );
    assert_eq!(
        change("RESET SESSION AUTHORIZATION"),
        Some(RoleChange::DiscardAll)
    );
    assert_eq!(change("discard all"), Some(RoleChange::DiscardAll));
    assert_eq!(change("SET search_path = a"), None);
    assert_eq!(change("RESET ALL"), None);
    assert_eq!(change("SELECT 1"), None);
}

#[test]
fn reads_startup_options_as_postgres_applies_them() {
    let id = |params: &[(&str, &str)]| StartupIdentity::from_params(params.iter().copied());
    assert_eq!(id(&[("user", "u")]), StartupIdentity::default());
    let got = id(&[("options", "-c search_path=x -c role=admin")]);
    assert_eq!(got.role.as_deref(), Some("admin"));
    let got = id(&[("options", "--role=a -crole=b")]);
    assert_eq!(got.role.as_deref(), Some("b"));
    let got = id(&[("options", "-c session-authorization=x\\ y")]);
    assert_eq!(got.session_authorization.as_deref(), Some("x y"));
    // Parameters come after options, whatever order they were sent in.
    let got = id(&[("ROLE", "p"), ("options", "-c role=o")]);
    assert_eq!(got.role.as_deref(), Some("p"));
    let got = id(&[("options", "-c role=none")]);
    assert_eq!(got.role, None);
}

fn info(role: Option<&str>) -> SessionInfo {
    SessionInfo {
        session_id: "s1".into(),
        backend_pid: 0,
        user: "u".into(),
        db_role: "login".into(),
        database: "d".into(),
        client_addr: std::net::Ipv4Addr::LOCALHOST.into(),
        client_port: 1,
        application_name: String::new(),
        tls: false,
        auth_method: String::new(),
        startup_identity: StartupIdentity {
            session_authorization: None,
            role: role.map(String::from),
            claims: Vec::new(),
        },
    }
}

/// Runs successful statements (text, tag); returns the acting role after each.
fn run(start_role: Option<&str>, steps: &[(&str, &str)]) -> Vec<String> {
    let s = info(start_role);
    let mut t = RoleTracker::default();
    steps
        .iter()
        .map(|(sql, tag)| {
            t.after_statement(&s, sql.as_bytes(), tag);
            t.effective(&s)
        })
        .collect()
}

#[test]
fn follows_set_and_reset() {
    let got = run(
        None,
        &[
            ("SET ROLE a", "SET"),
            ("SELECT 1", "SELECT 1"),
            ("RESET ROLE", "RESET"),
        ],
    );
    assert_eq!(got, ["a", "a", "login"]);
    let got = run(
        Some("start"),
        &[
            ("SET ROLE a", "SET"),
            ("RESET ROLE", "RESET"),
            ("SET SESSION AUTHORIZATION b", "SET"),
            ("SET ROLE c", "SET"),
            ("DISCARD ALL", "DISCARD ALL"),
        ],
    );
    assert_eq!(got, ["a", "start", "b", "c", "login"]);
}

#[test]
fn transaction_blocks_commit_or_drop_changes() {
    let got = run(
        None,
        &[
            ("BEGIN", "BEGIN"),
            ("SET ROLE a", "SET"),
            ("ROLLBACK", "ROLLBACK"),
            ("BEGIN", "BEGIN"),
            ("SET ROLE b", "SET"),
            ("COMMIT", "COMMIT"),
            ("BEGIN", "BEGIN"),
            ("SET LOCAL ROLE c", "SET"),
            ("SELECT 1", "SELECT 1"),
            ("COMMIT", "COMMIT"),
            ("SET LOCAL ROLE d", "SET"),
        ],
    );
    assert_eq!(
        got,
        ["login", "a", "login", "login", "b", "b", "b", "c", "c", "b", "b"]
    );
}

#[test]
fn forgets_a_session_at_its_end() {
    let s = info(None);
    let mut t = RoleTracker::default();
    t.after_statement(&s, b"SELECT 1", "SELECT 1");
    assert!(t.sessions.is_empty(), "no entry without a change");
    t.after_statement(&s, b"SET ROLE a", "SET");
    assert_eq!(t.sessions.len(), 1);
    t.end_session("s1");
    assert!(t.sessions.is_empty());
}
