//! The console over TLS (`[tls]` in its configuration): HTTPS answers, the
//! cookies are `Secure`, and plain HTTP gets no page.

use std::process::Command;

use pgtrail::console::config::ConsoleTls;
use pgtrail::console::users::{self, Role};
use pgtrail::console::{Console, ConsoleConfig};
use tokio::sync::oneshot;

use crate::harness::clickhouse::ChServer;

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(args)
        .output()
        .expect("run curl (scripts/install-deps.sh installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_secure_cookies() {
    let ch = ChServer::shared();
    let (db, _) = ch.fresh_schema("console_tls");
    let dir = tempfile::tempdir().expect("tempdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, key) = (
        dir.path().join("console.crt"),
        dir.path().join("console.key"),
    );
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write key");
    let users_file = dir.path().join("console-users.toml");
    users::upsert(&users_file, "ann", Role::Auditor, "pw").expect("user");
    let config = ConsoleConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        clickhouse_url: Some(ch.http_url()),
        database: db,
        users_file,
        tls: Some(ConsoleTls {
            cert_file: cert,
            key_file: key,
        }),
        ..ConsoleConfig::default()
    };
    let console = Console::bind(&config, None).await.expect("console starts");
    let url = console.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(console.run(async move {
        let _ = stopped.await;
    }));
    let plain = url.replacen("https://", "http://", 1);
    let (https, http) = tokio::task::spawn_blocking(move || {
        (
            curl(&[
                "-ksS",
                "-D",
                "-",
                "-o",
                "/dev/null",
                &format!("{url}/login"),
            ]),
            curl(&[
                "-sS",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{plain}/login"),
            ]),
        )
    })
    .await
    .expect("join");
    let head = String::from_utf8_lossy(&https.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie: pgtrail_console_login="))
        .expect("login cookie");
    for attr in ["secure", "httponly", "samesite=strict", "path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        head.contains("strict-transport-security: max-age="),
        "{head}"
    );
    assert!(
        !String::from_utf8_lossy(&http.stdout).starts_with('2'),
        "plain HTTP answered"
    );
    let _ = stop.send(());
}
