//! Authentication flags of `kvop reconcile` against real servers: an NKey seed file, and
//! mutual TLS with a CA, a client certificate and its key.

mod support;

use std::path::Path;
use std::process::Command;

use support::{NatsServer, bucket, entry, kvop, manifests};

fn manifest_dir() -> tempfile::TempDir {
    manifests(&[(
        "m.yaml",
        &[bucket("b", ""), entry("e", "b", "k", "v", "")].join("---\n"),
    )])
}

#[tokio::test]
async fn an_nkey_seed_file_authenticates() {
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::start_with_config(&format!(
        "authorization {{ users: [ {{ nkey: \"{}\" }} ] }}\n",
        user.public_key()
    ));
    let keys = tempfile::tempdir().expect("dir");
    let seed = keys.path().join("user.nk");
    std::fs::write(&seed, user.seed().expect("seed")).expect("write seed");
    let dir = manifest_dir();
    let without = kvop(
        &server.url(),
        &["reconcile", "-f", dir.path().to_str().expect("path")],
    )
    .await;
    assert_eq!(without.code, 1, "the server requires the NKey");
    let with = kvop(
        &server.url(),
        &[
            "reconcile",
            "-f",
            dir.path().to_str().expect("path"),
            "--nkey",
            seed.to_str().expect("path"),
        ],
    )
    .await;
    assert_eq!(with.code, 0, "{with:?}");
    assert!(
        !with.stderr.contains(&user.seed().expect("seed")),
        "the seed is never printed"
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=kvop-test-ca",
        ],
    );
    // Extensions make v3 certificates: rustls refuses the v1 ones `x509 -req` makes otherwise.
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for name in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "1",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(["-extfile".into(), format!("{name}.ext")]);
        openssl(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn mutual_tls_uses_the_ca_and_client_certificate_flags() {
    let pki = tempfile::tempdir().expect("pki");
    certificates(pki.path());
    let file = |name: &str| pki.path().join(name).to_str().expect("path").to_string();
    let server = NatsServer::start_with_config(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}\n",
        file("server.crt"),
        file("server.key"),
        file("ca.crt")
    ));
    let url = format!("tls://127.0.0.1:{}", server.port);
    let dir = manifest_dir();
    let path = dir.path().to_str().expect("path");
    let no_client_certificate = kvop(
        &url,
        &["reconcile", "-f", path, "--tls-ca", &file("ca.crt")],
    )
    .await;
    assert_eq!(
        no_client_certificate.code, 1,
        "the server verifies client certificates"
    );
    let run = kvop(
        &url,
        &[
            "reconcile",
            "-f",
            path,
            "--tls-ca",
            &file("ca.crt"),
            "--tls-cert",
            &file("client.crt"),
            "--tls-key",
            &file("client.key"),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
}
