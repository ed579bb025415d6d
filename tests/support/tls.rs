//! TLS for test registries: a throwaway CA (rcgen), leaves for given names (optionally
//! expired), and a TLS front that terminates TLS with a certificate the test can swap at
//! run time and pipes the bytes to a plain-HTTP backend (e.g. a `regdns::sim` registry).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};

/// A test CA.
pub struct Pki {
    ca_key: KeyPair,
    ca: rcgen::Certificate,
    dir: tempfile::TempDir,
}

impl Pki {
    /// A new CA.
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "regdns test CA");
        let ca = p.self_signed(&ca_key).unwrap();
        Pki {
            ca_key,
            ca,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// PEM file trusting this CA.
    pub fn ca_file(&self) -> PathBuf {
        let path = self.dir.path().join("ca.pem");
        std::fs::write(&path, self.ca.pem()).unwrap();
        path
    }

    /// A leaf for `names` signed by the CA (expired in 2001 if asked).
    pub fn leaf(&self, names: &[&str], expired: bool) -> Arc<CertifiedKey> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        certified(cert.der().clone(), &key)
    }
}

/// A self-signed leaf nobody trusts.
pub fn self_signed(names: &[&str]) -> Arc<CertifiedKey> {
    let key = KeyPair::generate().unwrap();
    let p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = p.self_signed(&key).unwrap();
    certified(cert.der().clone(), &key)
}

fn certified(cert: CertificateDer<'static>, key: &KeyPair) -> Arc<CertifiedKey> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
    Arc::new(CertifiedKey::new(vec![cert], signing))
}

/// Serves whatever certificate was set last.
#[derive(Debug)]
pub struct SwitchableCert(Mutex<Arc<CertifiedKey>>);

impl SwitchableCert {
    /// Replaces the certificate for new handshakes.
    pub fn set(&self, c: Arc<CertifiedKey>) {
        *self.0.lock().unwrap() = c;
    }
}

impl ResolvesServerCert for SwitchableCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.lock().unwrap().clone())
    }
}

/// A TLS server configuration serving `cert`.
pub fn server_config(cert: Arc<CertifiedKey>) -> rustls::ServerConfig {
    server_config_with(Arc::new(SwitchableCert(Mutex::new(cert))))
}

fn server_config_with(resolver: Arc<SwitchableCert>) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(resolver)
}

/// Starts a TLS front on 127.0.0.1:0 forwarding to `backend`; returns its address and the
/// certificate switch.
pub async fn tls_front(
    backend: SocketAddr,
    cert: Arc<CertifiedKey>,
) -> (SocketAddr, Arc<SwitchableCert>) {
    let resolver = Arc::new(SwitchableCert(Mutex::new(cert)));
    let cfg = server_config_with(resolver.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(Duration::from_secs(2), acceptor.accept(s)).await
                else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    (addr, resolver)
}
