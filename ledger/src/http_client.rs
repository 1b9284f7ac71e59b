//! A minimal keep-alive HTTP/1.1 client for the binary's own callers of the command API (the
//! load generator, the gates run apart): no client library in the dependency tree for that.

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A minimal keep-alive HTTP/1.1 client (as wrk or pgbench are minimal clients): it writes
/// each request in one piece and reads one `Content-Length` response, so the load generator
/// takes as little of the machine from the engine as it can.
pub(crate) struct Client {
    stream: TcpStream,
    authority: String,
    key: String,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Client {
    pub(crate) async fn connect(authority: &str, key: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(authority).await.with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true)?;
        let (authority, key) = (authority.to_owned(), key.to_owned());
        Ok(Client { stream, authority, key, out: Vec::with_capacity(1024), buf: Vec::with_capacity(4096) })
    }

    pub(crate) async fn post(&mut self, path: &str, body: String) -> anyhow::Result<(u16, Vec<u8>)> {
        self.send("POST", path, body).await
    }

    /// A request with a JSON body (`POST`, `PUT`).
    pub(crate) async fn send(&mut self, method: &str, path: &str, body: String) -> anyhow::Result<(u16, Vec<u8>)> {
        use std::io::Write;
        self.out.clear();
        write!(
            self.out,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.authority,
            self.key,
            body.len()
        )?;
        self.out.extend_from_slice(body.as_bytes());
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    /// A `POST` with a JSON body and headers of its own beside the key (a provider's signature).
    pub(crate) async fn post_with(
        &mut self,
        path: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        use std::io::Write;
        self.out.clear();
        write!(self.out, "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n", self.authority)?;
        for (name, value) in headers {
            write!(self.out, "{name}: {value}\r\n")?;
        }
        write!(self.out, "content-length: {}\r\n\r\n", body.len())?;
        self.out.extend_from_slice(body.as_bytes());
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    pub(crate) async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        use std::io::Write;
        self.out.clear();
        write!(
            self.out,
            "GET {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\r\n",
            self.authority, self.key
        )?;
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).context("response head is not UTF-8")?;
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).context("no status in the response")?;
                let length: usize = head
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("content-length")))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .context("responses without Content-Length are not supported")?;
                let total = end + 4 + length;
                while self.buf.len() < total {
                    self.fill().await?;
                }
                let body = self.buf[end + 4..total].to_vec();
                self.buf.drain(..total);
                return Ok((status, body));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}
