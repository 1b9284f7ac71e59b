//! The client against a loopback TLS receiver whose certificate comes from a test CA made here
//! (rcgen): trusted, it receives; untrusted, the client refuses before sending anything.

mod webhooks_interop;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use outbound::{Client, ClientConfig, OutboundError};
use rustls_pki_types::PrivateKeyDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA, and a server certificate for `localhost` and 127.0.0.1 signed by it.
struct TestPki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

fn pki() -> TestPki {
    pki_for(&["localhost", "127.0.0.1"])
}

fn pki_for(names: &[&str]) -> TestPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "ledger outbound test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    #[allow(deprecated)] // the same provider as the client's (see outbound/src/client.rs)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    TestPki { ca_pem: ca_cert.pem(), server }
}

/// What the receiver saw: TCP connections, and the requests read in full (head and body).
#[derive(Default)]
struct Seen {
    connections: usize,
    requests: Vec<String>,
}

/// A TLS receiver on loopback. By path: `/big` answers 100 KiB, `/redirect` a 302, `/slow`
/// waits 5 s; anything else answers 200 `delivered`.
async fn receiver(server: rustls::ServerConfig) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            record.lock().unwrap().connections += 1;
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                            .and_then(|n| n.trim().parse().ok())
                            .unwrap_or(0usize);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                record.lock().unwrap().requests.push(text);
                let answer = match path.as_str() {
                    "/big" => {
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}", 100 * 1024, "x".repeat(100 * 1024))
                    }
                    "/chunked-big" => {
                        let chunk = "x".repeat(1024);
                        let mut answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
                        for _ in 0..100 {
                            answer.push_str(&format!("400\r\n{chunk}\r\n"));
                        }
                        answer + "0\r\n\r\n"
                    }
                    "/redirect" => {
                        "HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n"
                            .to_owned()
                    }
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned()
                    }
                    _ => "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nX-Receiver: test\r\n\r\ndelivered".to_owned(),
                };
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, seen)
}

fn trusting(ca_pem: &str) -> Client {
    Client::new(ClientConfig {
        extra_root_ca_pem: Some(ca_pem.as_bytes().to_vec()),
        timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .unwrap()
}

fn json() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
    headers
}

#[tokio::test]
async fn a_receiver_with_a_trusted_certificate_gets_the_request() {
    let pki = pki();
    let (port, seen) = receiver(pki.server).await;
    let client = trusting(&pki.ca_pem);
    for host in ["localhost", "127.0.0.1"] {
        let answer = client
            .post(&format!("https://{host}:{port}/hook"), json(), Bytes::from_static(br#"{"n":1}"#))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "delivered");
        assert_eq!(answer.headers.get("x-receiver").unwrap(), "test");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests.len(), 2);
    assert!(seen.requests[0].starts_with("POST /hook HTTP/1.1\r\n"), "{}", seen.requests[0]);
    assert!(seen.requests[0].ends_with(r#"{"n":1}"#), "{}", seen.requests[0]);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_and_nothing_is_sent() {
    let pki = pki();
    let (port, seen) = receiver(pki.server).await;
    // Mozilla's roots only, then another CA (of the same name): neither signed the receiver's
    // certificate.
    let other_ca = self::pki().ca_pem;
    for client in [Client::new(ClientConfig::default()).unwrap(), trusting(&other_ca)] {
        let refused =
            client.post(&format!("https://localhost:{port}/hook"), json(), Bytes::from_static(b"secret")).await;
        match refused {
            Err(OutboundError::UntrustedCertificate { host, reason }) => {
                assert_eq!(host, "localhost");
                // No root of that name (UnknownIssuer), or one of the same name that did not sign it.
                assert!(reason == "UnknownIssuer" || reason == "BadSignature", "{reason}");
            }
            other => panic!("expected an untrusted certificate, got {other:?}"),
        }
    }
    let error = Client::new(ClientConfig::default())
        .unwrap()
        .post(&format!("https://localhost:{port}/hook"), json(), Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "the certificate of localhost is not trusted (UnknownIssuer): nothing was sent");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.connections, 3, "the client did connect");
    assert!(seen.requests.is_empty(), "but sent nothing: {:?}", seen.requests);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = pki_for(&["receiver.test"]);
    let (port, seen) = receiver(pki.server).await;
    let refused = trusting(&pki.ca_pem).post(&format!("https://127.0.0.1:{port}/hook"), json(), Bytes::new()).await;
    assert!(
        matches!(&refused, Err(OutboundError::UntrustedCertificate { reason, .. }) if reason.contains("NotValidForName")),
        "{refused:?}"
    );
    assert!(seen.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn redirects_large_answers_and_slow_receivers_are_errors() {
    let pki = pki();
    let (port, seen) = receiver(pki.server).await;
    let client = trusting(&pki.ca_pem);
    let url = |path: &str| format!("https://localhost:{port}{path}");
    assert_eq!(
        client.post(&url("/redirect"), json(), Bytes::new()).await.unwrap_err(),
        OutboundError::RedirectRefused { host: "localhost".into(), status: 302 }
    );
    for big in ["/big", "/chunked-big"] {
        assert_eq!(
            client.post(&url(big), json(), Bytes::new()).await.unwrap_err(),
            OutboundError::BodyTooLarge { host: "localhost".into(), limit_bytes: 64 * 1024 },
            "{big}"
        );
    }
    let roomy = Client::new(ClientConfig {
        extra_root_ca_pem: Some(pki.ca_pem.as_bytes().to_vec()),
        max_body_bytes: 200 * 1024,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(roomy.post(&url("/chunked-big"), json(), Bytes::new()).await.unwrap().body.len(), 100 * 1024);
    let started = std::time::Instant::now();
    assert_eq!(
        client.post(&url("/slow"), json(), Bytes::new()).await.unwrap_err(),
        OutboundError::Timeout { host: "localhost".into(), timeout_ms: 2000 }
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    // The redirect's target was never called: only the receiver's own paths were.
    let paths: Vec<String> =
        seen.lock().unwrap().requests.iter().map(|r| r.split(' ').nth(1).unwrap_or("").to_owned()).collect();
    assert_eq!(paths.iter().filter(|p| *p == "/elsewhere").count(), 0, "{paths:?}");
}

#[tokio::test]
async fn refused_connections_silent_servers_and_plain_http_are_errors() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let client = Client::new(ClientConfig { timeout: Duration::from_millis(500), ..Default::default() }).unwrap();
    assert_eq!(
        client.post(&format!("https://127.0.0.1:{port}/"), json(), Bytes::new()).await.unwrap_err(),
        OutboundError::ConnectRefused { host: "127.0.0.1".into() }
    );
    // Accepts the connection, never speaks TLS.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    assert_eq!(
        client.post(&format!("https://127.0.0.1:{port}/"), json(), Bytes::new()).await.unwrap_err(),
        OutboundError::Timeout { host: "127.0.0.1".into(), timeout_ms: 500 }
    );
    assert_eq!(
        client.post(&format!("http://127.0.0.1:{port}/"), json(), Bytes::new()).await.unwrap_err(),
        OutboundError::PlainHttpRefused { host: "127.0.0.1".into() }
    );
}
