//! A raw protocol client for what real drivers never send.
#![allow(dead_code)]

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = (3i32 << 16).to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend(((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

pub fn query(sql: &[u8]) -> Vec<u8> {
    let mut body = sql.to_vec();
    body.push(0);
    message(b'Q', &body)
}

/// Messages as (tag, body) until `until` arrives or the peer closes.
pub async fn read_until(stream: &mut TcpStream, until: u8) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let mut header = [0u8; 5];
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut header)).await;
        match read {
            Ok(Ok(_)) => {}
            _ => return out,
        }
        let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        if stream.read_exact(&mut body).await.is_err() {
            return out;
        }
        let tag = header[0];
        out.push((tag, body));
        if tag == until {
            return out;
        }
    }
}

/// The SQLSTATE of the first ErrorResponse among `msgs`.
pub fn sqlstate(msgs: &[(u8, Vec<u8>)]) -> Option<String> {
    let (_, body) = msgs.iter().find(|(t, _)| *t == b'E')?;
    let mut fields = body.split(|&b| b == 0);
    fields
        .find(|f| f.first() == Some(&b'C'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
}

/// Opens a socket and sends only the startup packet.
pub async fn open(addr: std::net::SocketAddr, params: &[(&str, &str)]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&startup(params)).await.expect("startup");
    s
}

/// Logs in (answering SCRAM, as the test cluster asks) and reads up to
/// ReadyForQuery.
pub async fn login(
    addr: std::net::SocketAddr,
    params: &[(&str, &str)],
    password: &str,
) -> TcpStream {
    login_with_key(addr, params, password).await.0
}

/// Like `login`, also returning the BackendKeyData (pid, secret).
pub async fn login_with_key(
    addr: std::net::SocketAddr,
    params: &[(&str, &str)],
    password: &str,
) -> (TcpStream, i32, i32) {
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
    let mut s = open(addr, params).await;
    let mut scram: Option<ScramSha256> = None;
    loop {
        let msgs = read_until(&mut s, b'R').await;
        let Some((b'R', body)) = msgs.last() else {
            panic!("login failed: {msgs:?}")
        };
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let data = &body[4..];
        match code {
            0 => break,
            10 => {
                let c = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                let mut b = b"SCRAM-SHA-256\0".to_vec();
                b.extend((c.message().len() as i32).to_be_bytes());
                b.extend_from_slice(c.message());
                s.write_all(&message(b'p', &b)).await.expect("write");
                scram = Some(c);
            }
            11 => {
                let c = scram.as_mut().expect("scram started");
                c.update(data).expect("scram update");
                s.write_all(&message(b'p', c.message()))
                    .await
                    .expect("write");
            }
            12 => scram
                .as_mut()
                .expect("scram")
                .finish(data)
                .expect("server signature"),
            other => panic!("unexpected auth request {other}"),
        }
    }
    let msgs = read_until(&mut s, b'Z').await;
    assert_eq!(
        msgs.last().map(|m| m.0),
        Some(b'Z'),
        "no ReadyForQuery: {msgs:?}"
    );
    let (_, key) = msgs.iter().find(|m| m.0 == b'K').expect("BackendKeyData");
    let pid = i32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    let secret = i32::from_be_bytes([key[4], key[5], key[6], key[7]]);
    (s, pid, secret)
}

/// Sends a CancelRequest and waits for the proxy to close the connection.
pub async fn cancel(addr: std::net::SocketAddr, pid: i32, secret: i32) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut packet = 16i32.to_be_bytes().to_vec();
    packet.extend(80_877_102i32.to_be_bytes());
    packet.extend(pid.to_be_bytes());
    packet.extend(secret.to_be_bytes());
    s.write_all(&packet).await.expect("cancel");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
}
