//! The one HTTP client of every outbound call: hyper's pooled HTTP/1.1 client over rustls
//! (ring). Certificates are verified against Mozilla's root store compiled into the binary
//! (`webpki-roots`: the same set on every machine, whether or not it has a CA bundle) plus the
//! PEM certificates of `ClientConfig::extra_root_ca_pem` (a private CA; `LEDGER_OUTBOUND_CA_FILE`
//! in `ledger up`). Redirects are never followed, every call has a connect and a total timeout,
//! and an answer's body is read up to `max_body_bytes` only.
//!
//! Errors name the host, never the path or query (they may carry a token).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Idle connections kept per host, and how long.
const IDLE_PER_HOST: usize = 8;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How a client is built. `Default`: 5 s to connect, 15 s in all, 64 KiB of answer, Mozilla's
/// roots only, `https://` only.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Time to open the TCP connection.
    pub connect_timeout: Duration,
    /// Time for the whole call: connection, TLS handshake, request, answer and its body.
    pub timeout: Duration,
    /// The longest answer body read; a longer one is `BodyTooLarge`.
    pub max_body_bytes: usize,
    /// PEM certificates trusted as roots besides Mozilla's (a private CA).
    pub extra_root_ca_pem: Option<Vec<u8>>,
    /// Whether `http://` URLs are called (a loopback simulator, a relay on the same host);
    /// otherwise only `https://`.
    pub allow_http: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_body_bytes: 64 * 1024,
            extra_root_ca_pem: None,
            allow_http: false,
        }
    }
}

impl ClientConfig {
    /// Trusts the PEM certificates of `path` besides Mozilla's roots.
    pub fn with_extra_ca_file(mut self, path: &std::path::Path) -> Result<ClientConfig, OutboundError> {
        let pem =
            std::fs::read(path).map_err(|e| OutboundError::BadCa(format!("{} cannot be read: {e}", path.display())))?;
        self.extra_root_ca_pem = Some(pem);
        Ok(self)
    }
}

/// Why an outbound call did not get an answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutboundError {
    #[error("invalid URL: {reason}")]
    InvalidUrl { reason: &'static str },
    #[error("plain http:// to {host} is refused: only https:// is allowed")]
    PlainHttpRefused { host: String },
    #[error("{host} refused the connection")]
    ConnectRefused { host: String },
    #[error("{host} cannot be reached: {reason}")]
    Connect { host: String, reason: String },
    #[error("{host} did not answer within {timeout_ms} ms")]
    Timeout { host: String, timeout_ms: u64 },
    #[error("the certificate of {host} is not trusted ({reason}): nothing was sent")]
    UntrustedCertificate { host: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("{host} answered a body longer than {limit_bytes} bytes")]
    BodyTooLarge { host: String, limit_bytes: usize },
    #[error("{host} answered a redirect ({status}): redirects are not followed")]
    RedirectRefused { host: String, status: u16 },
    #[error("the call to {host} failed: {reason}")]
    Http { host: String, reason: String },
    #[error("the extra CA certificates are not usable: {0}")]
    BadCa(String),
}

/// An answer: its status, headers and body (at most `max_body_bytes`).
#[derive(Clone, Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The shared client: cheap to clone (one connection pool behind an `Arc`).
#[derive(Clone, Debug)]
pub struct Client {
    pool: Pool<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_body_bytes: usize,
    allow_http: bool,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, OutboundError> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(pem) = &config.extra_root_ca_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| OutboundError::BadCa(e.to_string()))?;
                roots.add(cert).map_err(|e| OutboundError::BadCa(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(OutboundError::BadCa("no PEM certificate in it".into()));
            }
        }
        // ring rather than aws-lc-rs (rustls' default): no C library to build with cmake, a
        // fraction of the compile time. rustls 0.23.48 deprecates it for its lack of
        // post-quantum key exchange; X25519 and the P-curves remain, as in every client that
        // has not moved yet.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| OutboundError::BadCa(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let pool = Pool::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .build(https);
        Ok(Client {
            pool,
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
            allow_http: config.allow_http,
        })
    }

    /// Checks a URL as a call would, without calling: `https://host[:port]/…` (or `http://`
    /// when allowed). Gives the parsed URL.
    pub fn check_url(&self, url: &str) -> Result<Uri, OutboundError> {
        let uri: Uri = url.parse().map_err(|_| OutboundError::InvalidUrl { reason: "not a URL" })?;
        let host = uri.host().filter(|h| !h.is_empty()).ok_or(OutboundError::InvalidUrl { reason: "no host" })?;
        match uri.scheme_str() {
            Some("https") => Ok(uri),
            Some("http") if self.allow_http => Ok(uri),
            Some("http") => Err(OutboundError::PlainHttpRefused { host: host.to_owned() }),
            _ => Err(OutboundError::InvalidUrl { reason: "the scheme is not https:// (or http://)" }),
        }
    }

    /// `POST url` with `body`.
    pub async fn post(&self, url: &str, headers: HeaderMap, body: Bytes) -> Result<Response, OutboundError> {
        self.send(Method::POST, url, headers, body).await
    }

    /// One call; a 3xx redirect is an error (its target is not called).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, OutboundError> {
        let uri = self.check_url(url)?;
        let host = uri.host().unwrap_or_default().to_owned();
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        match tokio::time::timeout(self.timeout, self.call(request, &host)).await {
            Ok(answer) => answer,
            Err(_) => Err(OutboundError::Timeout { host, timeout_ms }),
        }
    }

    async fn call(&self, request: http::Request<Full<Bytes>>, host: &str) -> Result<Response, OutboundError> {
        let answer = self.pool.request(request).await.map_err(|e| classify(host, &e))?;
        let status = answer.status();
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            return Err(OutboundError::RedirectRefused { host: host.to_owned(), status: status.as_u16() });
        }
        let too_large = || OutboundError::BodyTooLarge { host: host.to_owned(), limit_bytes: self.max_body_bytes };
        let declared = answer.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        if declared.is_some_and(|n: usize| n > self.max_body_bytes) {
            return Err(too_large());
        }
        let (parts, body) = answer.into_parts();
        let body = Limited::new(body, self.max_body_bytes).collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                too_large()
            } else {
                OutboundError::Http { host: host.to_owned(), reason: chain(e.as_ref()) }
            }
        })?;
        Ok(Response { status: parts.status, headers: parts.headers, body: body.to_bytes() })
    }
}

/// Names a failed call by what went wrong: refused, timed out, an untrusted certificate, other
/// TLS, other connection errors.
fn classify(host: &str, error: &hyper_util::client::legacy::Error) -> OutboundError {
    let host = host.to_owned();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(reason) => {
                    OutboundError::UntrustedCertificate { host, reason: format!("{reason:?}") }
                }
                other => OutboundError::Tls { host, reason: other.to_string() },
            };
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return OutboundError::ConnectRefused { host },
                std::io::ErrorKind::TimedOut => {
                    return OutboundError::Connect { host, reason: "connect timed out".into() };
                }
                _ => {}
            }
            // `io::Error::source` skips the error it wraps (a TLS error inside one or two of
            // them): look inside instead.
            if let Some(inner) = io.get_ref() {
                cause = Some(inner as &(dyn std::error::Error + 'static));
                continue;
            }
        }
        cause = e.source();
    }
    if error.is_connect() {
        OutboundError::Connect { host, reason: chain(error) }
    } else {
        OutboundError::Http { host, reason: chain(error) }
    }
}

/// An error and its causes, on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_unless_http_is_allowed() {
        let strict = Client::new(ClientConfig::default()).unwrap();
        assert!(strict.check_url("https://gateway.example/sms?x=1").is_ok());
        assert_eq!(
            strict.check_url("http://gateway.example/sms"),
            Err(OutboundError::PlainHttpRefused { host: "gateway.example".into() })
        );
        assert!(matches!(strict.check_url("ftp://gateway.example/"), Err(OutboundError::InvalidUrl { .. })));
        assert!(matches!(strict.check_url("/sms"), Err(OutboundError::InvalidUrl { .. })));
        assert!(matches!(strict.check_url("not a url"), Err(OutboundError::InvalidUrl { .. })));
        let loose = Client::new(ClientConfig { allow_http: true, ..Default::default() }).unwrap();
        assert!(loose.check_url("http://127.0.0.1:8090/sms").is_ok());
    }

    #[test]
    fn an_extra_ca_that_is_not_pem_is_refused() {
        let bad = ClientConfig { extra_root_ca_pem: Some(b"not a certificate".to_vec()), ..Default::default() };
        assert!(matches!(Client::new(bad), Err(OutboundError::BadCa(_))));
    }
}
