//! The floor for `benches/e2e.sh`: a TCP proxy that only copies bytes, on
//! the same one-thread tokio runtime as pgtrail, with TCP_NODELAY both ways.
//! No parsing, no authentication, no audit. Whatever it costs on a machine
//! is what any user-space proxy in this position costs there; pgtrail's
//! distance to it is what pgtrail's own work costs.
//!
//! `cargo run --release --example copy_proxy -- LISTEN_ADDR UPSTREAM_ADDR`

use tokio::net::{TcpListener, TcpStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: copy_proxy LISTEN_ADDR UPSTREAM_ADDR".into());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (client, _) = listener.accept().await?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Err(e) = copy(client, &upstream).await {
                    eprintln!("copy_proxy: {e}");
                }
            });
        }
    })
}

async fn copy(mut client: TcpStream, upstream: &str) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
