//! The SMTP relay the mail-path tests send to: `tests/smtp/relay_server.py` (aiosmtpd) in a
//! child process on port 0, killed on drop, steered and read through files in its directory;
//! plus the self-signed certificates it presents.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `SESAME_PYTHON` (default: the test venv's python) if it has aiosmtpd; otherwise `None`,
/// after saying so on stderr (`SKIPPED:`), or a panic where `SESAME_REQUIRE_DNS_TOOLS=1`.
pub fn python_with_aiosmtpd() -> Option<String> {
    let python = std::env::var("SESAME_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/test-venv/bin/python"
        )
        .to_owned()
    });
    let ok = Command::new(&python)
        .args(["-c", "import aiosmtpd.smtp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let required = std::env::var("SESAME_REQUIRE_DNS_TOOLS").is_ok_and(|v| v == "1");
    assert!(!required, "{python} needs aiosmtpd (pip install aiosmtpd)");
    crate::harness::say(&format!(
        "SKIPPED: {python} lacks aiosmtpd (pip install aiosmtpd); the relay tests did not run"
    ));
    None
}

/// A self-signed certificate for `127.0.0.1` (and `localhost`), as PEM files in `dir`.
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Cert {
    pub fn make(dir: &Path, name: &str) -> Cert {
        use openssl::asn1::{Asn1Integer, Asn1Time};
        use openssl::bn::BigNum;
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::x509::extension::SubjectAlternativeName;
        use openssl::x509::{X509, X509NameBuilder};
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut subject = X509NameBuilder::new().unwrap();
        subject.append_entry_by_text("CN", name).unwrap();
        let subject = subject.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial
            .rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)
            .unwrap();
        b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
            .unwrap();
        b.set_subject_name(&subject).unwrap();
        b.set_issuer_name(&subject).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert, b.build().to_pem().unwrap()).unwrap();
        std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        Cert {
            cert,
            key: key_path,
        }
    }
}

/// How the relay is set up.
#[derive(Default)]
pub struct Options<'a> {
    /// Offer STARTTLS with this certificate.
    pub starttls: Option<&'a Cert>,
    /// Speak TLS from the first byte (SMTPS) with this certificate.
    pub smtps: Option<&'a Cert>,
    /// Require AUTH with this user and password.
    pub auth: Option<(&'a str, &'a str)>,
}

/// The running relay.
pub struct Smtp {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Smtp {
    pub fn start(python: &str, opts: Options<'_>) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(python);
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/smtp/relay_server.py"
        ))
        .arg(dir.path());
        if let Some(c) = opts.starttls {
            cmd.arg("--starttls").arg(&c.cert).arg(&c.key);
        }
        if let Some(c) = opts.smtps {
            cmd.arg("--smtps").arg(&c.cert).arg(&c.key);
        }
        if let Some((user, pass)) = opts.auth {
            cmd.args(["--auth", user, pass]);
        }
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        // Built before waiting, so a relay that never starts is still killed on the way out.
        let mut smtp = Smtp {
            child,
            dir,
            port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        smtp.port = loop {
            if let Ok(text) = std::fs::read_to_string(smtp.dir.path().join("port")) {
                break text.trim().parse().unwrap();
            }
            if let Some(status) = smtp.child.try_wait().unwrap() {
                panic!("relay_server.py exited ({status}):\n{}", smtp.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "relay_server.py did not listen within 30 s:\n{}",
                smtp.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        smtp
    }

    /// `host:port` for `--smtp-relay`.
    pub fn relay(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Every event so far, one per line (see relay_server.py).
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("events"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Events starting with `prefix`.
    pub fn events_of(&self, prefix: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.starts_with(prefix))
            .collect()
    }

    /// The replies to the next DATA commands (afterwards: 250).
    pub fn plan(&self, codes: &[&str]) {
        let text: String = codes.iter().map(|c| format!("{c}\n")).collect();
        let path = self.dir.path().join("plan");
        std::fs::write(path.with_extension("new"), text).unwrap();
        std::fs::rename(path.with_extension("new"), path).unwrap();
    }

    /// Whether new connections are offered STARTTLS (when a certificate was given).
    pub fn offer_starttls(&self, offer: bool) {
        let path = self.dir.path().join("no-starttls");
        if offer {
            let _ = std::fs::remove_file(path);
        } else {
            std::fs::write(path, "").unwrap();
        }
    }

    /// The accepted messages, in order.
    pub fn messages(&self) -> Vec<PathBuf> {
        let mut m: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        m.sort();
        m
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- relay events ----\n{}\n---- relay stderr ----\n{}",
                self.events().join("\n"),
                self.stderr()
            );
        }
    }
}
