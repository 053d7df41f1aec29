//! The processes a benchmark runs beside itself: the real `sesame` binary, NSD, the bare axum
//! server that stands for the HTTP ceiling, and moto. Each is killed when dropped.

use crate::load::Signer;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the benchmark's servers are bootstrapped with.
pub const KEY_ID: &str = "AKIABENCHMARK0000001";
/// Its secret.
pub const SECRET: &str = "benchmark-secret-key-0000000000000000000";
/// The region every request is signed for.
pub const REGION: &str = "us-east-1";

/// Arguments that turn the key pool off, for scenarios that make no Easy DKIM keys: CPU-wise
/// that is a server whose pool is full, without waiting seconds for it to fill.
pub const NO_POOL: [&str; 4] = ["--key-pool-2048", "0", "--key-pool-1024", "0"];

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `sesame` binary next to this one (`cargo build --release` puts both in one directory).
pub fn sesame_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SESAME_BIN") {
        return PathBuf::from(p);
    }
    let me = std::env::current_exe().expect("current exe");
    me.with_file_name("sesame")
}

/// A running `sesame serve`.
pub struct Sesame {
    proc: Proc,
    /// The API address.
    pub api: SocketAddr,
    /// The key-zone DNS address.
    pub dns: SocketAddr,
    /// From spawn to the `listening` line.
    pub startup: Duration,
}

impl Sesame {
    /// Starts `sesame serve` on `data_dir` with loopback port-0 listeners, no rate limit, the
    /// benchmark's credentials and `extra` arguments; its log goes to `data_dir/../<dir>.log`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Sesame {
        let log = data_dir.with_extension("log");
        // Where this start's lines begin (a data dir's log is appended to by every start).
        let offset = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("server log");
        let spawned = Instant::now();
        let mut child = Command::new(sesame_bin())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--api-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .args(["--rate-limit", "0"])
            .args(extra)
            .env("SESAME_ACCESS_KEY_ID", KEY_ID)
            .env("SESAME_SECRET_ACCESS_KEY", SECRET)
            .env_remove("SESAME_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); build it with `cargo build --release -p sesame-server`",
                    sesame_bin().display()
                )
            });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (api, dns) = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!(
                    "sesame exited before listening; see {}",
                    data_dir.with_extension("log").display()
                );
            };
            if let Some(rest) = line.split("listening api=").nth(1) {
                let mut parts = rest.split_whitespace();
                let api = parts.next().and_then(|a| a.parse().ok()).expect("api addr");
                let dns = parts
                    .next()
                    .and_then(|d| d.strip_prefix("dns="))
                    .and_then(|d| d.parse().ok())
                    .expect("dns addr");
                break (api, dns);
            }
        };
        let startup = spawned.elapsed();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        // A server in service has its key pool full; measuring while the pool fills would
        // measure RSA key generation on the same cores.
        let log = data_dir.with_extension("log");
        let pooled = !extra.windows(2).any(|w| w == ["--key-pool-2048", "0"]);
        let deadline = Instant::now() + Duration::from_secs(if pooled { 60 } else { 0 });
        while Instant::now() < deadline
            && !std::fs::read(&log)
                .map(|l| {
                    String::from_utf8_lossy(&l[offset.min(l.len())..]).contains("key pool ready")
                })
                .unwrap_or(false)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        Sesame {
            proc: Proc(child),
            api,
            dns,
            startup,
        }
    }

    /// A signer with the benchmark's credentials.
    pub fn signer(&self) -> Signer {
        signer()
    }

    /// Resident and peak resident memory in MiB.
    pub fn rss_mib(&self) -> (f64, f64) {
        rss_mib(self.proc.0.id())
    }

    /// SIGTERM and wait, so the next start finds the database closed cleanly.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.proc.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.proc.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The benchmark's signer.
pub fn signer() -> Signer {
    Signer {
        key_id: KEY_ID.into(),
        secret: SECRET.into(),
        region: REGION.into(),
    }
}

/// VmRSS and VmHWM of a process, in MiB.
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A loopback port free on both UDP and TCP, below the kernel's ephemeral range, so no
/// port-0 listener or outgoing connection takes it before its server binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    loop {
        let port = 24_000 + NEXT.fetch_add(1, Ordering::Relaxed) % 8_000;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_tcp(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// NSD, authoritative for one zone, with as many server processes as there are cores.
///
/// Response rate limiting is off: NSD's default (200 answers/s per client network, every
/// NXDOMAIN of a zone counted as one name) is a defence of public servers against reflection,
/// and here one client asks hundreds of thousands of names on loopback, so it would drop most
/// answers and measure timeouts instead of servers.
pub struct Nsd {
    _proc: Proc,
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
}

impl Nsd {
    /// Serves `zone` with `records` (zone-file lines, relative or absolute names) from `dir`, on
    /// `port` or a free one.
    pub fn start(
        dir: &Path,
        zone: &str,
        records: &[String],
        servers: usize,
        port: Option<u16>,
    ) -> Nsd {
        std::fs::create_dir_all(dir).expect("nsd dir");
        let port = port.unwrap_or_else(free_port);
        let d = dir.display();
        std::fs::write(
            dir.join("nsd.conf"),
            format!(
                "server:\n  ip-address: 127.0.0.1@{port}\n  username: \"\"\n  zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  logfile: \"{d}/nsd.log\"\n  server-count: {servers}\n  rrl-ratelimit: 0\nremote-control:\n  control-enable: no\nzone:\n  name: {zone}\n  zonefile: {zone}.zone\n"
            ),
        )
        .expect("nsd.conf");
        let mut text = format!(
            "$ORIGIN {zone}.\n$TTL 300\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 2026112601 3600 600 86400 60\n@ IN NS ns1.{zone}.\nns1 IN A 127.0.0.1\n"
        );
        for r in records {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(dir.join(format!("{zone}.zone")), text).expect("zone file");
        let child = Command::new("nsd")
            .args(["-d", "-c"])
            .arg(dir.join("nsd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nsd (apt-get install nsd)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let nsd = Nsd {
            _proc: Proc(child),
            addr,
        };
        wait_tcp(addr, "nsd");
        nsd
    }
}

/// Whether `program` can be run.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python interpreter with the benchmark's packages (`scripts/bench` makes the venv).
pub fn python() -> String {
    std::env::var("SESAME_BENCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether `python()` can import `module`.
pub fn python_has(module: &str) -> bool {
    Command::new(python())
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The bare axum server (`sesame-bench bare-axum`) answering every GET with `body`.
pub fn bare_axum(body_file: &Path) -> (Proc, SocketAddr) {
    let me = std::env::current_exe().expect("current exe");
    let mut child = Command::new(me)
        .arg("bare-axum")
        .arg(body_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bare axum");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().and_then(Result::ok).expect("bare axum line");
        if let Some(a) = line.strip_prefix("listening ") {
            break a.trim().parse().expect("addr");
        }
    };
    (Proc(child), addr)
}

/// moto's server (`python -m moto.server`), if the venv has moto.
pub fn moto() -> Option<(Proc, SocketAddr)> {
    if !python_has("moto.server") {
        return None;
    }
    let port = free_port();
    let child = Command::new(python())
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let p = Proc(child);
    wait_tcp(addr, "moto");
    Some((p, addr))
}

/// The machine's CPU time so far, busy and total, in clock ticks (`/proc/stat`'s first line).
pub fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The share of the machine's CPU that was busy between two `cpu_ticks` readings.
pub fn busy_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return f64::NAN;
    }
    after.0.saturating_sub(before.0) as f64 / total as f64
}
