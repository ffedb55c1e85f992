//! A small HTTP/1.1 client for the console tests: one request per
//! connection, cookies by hand, the CSRF field of a page, a login.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// `name=value` of a `Set-Cookie` for `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.header("set-cookie")
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap_or("").to_string())
    }

    /// The value of the hidden `csrf` field of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("csrf field");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').expect("end of value")].to_string()
    }
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    body: &str,
) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the console");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !cookie.is_empty() {
        req.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(60), s.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", pgtrail::console::pages::layout::enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Logs in; returns the session cookie (`name=value`).
pub async fn login(addr: SocketAddr, user: &str, password: &str) -> String {
    let page = request(addr, "GET", "/login", "", "").await;
    assert_eq!(page.status, 200);
    let pre = page
        .cookie("pgtrail_console_login")
        .expect("login csrf cookie");
    let body = form(&[
        ("csrf", &page.csrf()),
        ("next", "/"),
        ("username", user),
        ("password", password),
    ]);
    let r = request(addr, "POST", "/login", &pre, &body).await;
    assert_eq!(r.status, 303, "login of {user}: {}", r.body);
    let set = r.header("set-cookie");
    let session = set
        .iter()
        .find(|c| c.starts_with("pgtrail_console="))
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    r.cookie("pgtrail_console").expect("session cookie")
}
