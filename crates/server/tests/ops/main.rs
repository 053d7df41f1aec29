//! The server's operational promises, through the real binary: SIGINT and SIGTERM let requests
//! in flight finish and exit 0; a data dir owned by someone else is refused; `--rotate-every`
//! rotates by itself and a replaced key stays in the key zone for `--key-retention`; a flag
//! beats its environment variable; a second server on taken ports fails clearly; and page
//! tokens only continue their own account's listing.
//!
//! Tests that need the exit status, a signal or a fixed port start the binary through [`Proc`]
//! (the shared harness owns its child and always binds port 0); the others use the harness.

#[allow(dead_code)]
#[path = "../it/fakedns.rs"]
mod fakedns;
#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;

mod config;
mod configfile;
#[path = "../crash/customerdns.rs"]
#[allow(dead_code)]
mod customerdns;
mod datadir;
mod pages;
mod rotation;
mod shutdown;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most any wait in these tests lasts before it fails with a message.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A `sesame` process of the test's own: its output captured, killed (and reaped) on drop, so
/// a failed assertion never leaves it running.
pub struct Proc {
    child: Option<Child>,
    output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Runs `sesame <args>` with no `SESAME_*` variable from the test's environment but `env`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesame"));
        cmd.args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("SESAME_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sesame");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            let output = output.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                }
            }));
        }
        Proc {
            child: Some(child),
            output,
            readers,
        }
    }

    /// `sesame serve` on `data_dir` with the test credentials and `extra` arguments, asking
    /// `resolver` (a local fake) instead of the system's resolver.
    pub fn serve(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        resolver: SocketAddr,
    ) -> Proc {
        let dir = data_dir.to_str().unwrap();
        let resolver = resolver.to_string();
        let mut args = vec!["serve", "--data-dir", dir];
        args.extend_from_slice(extra);
        let mut all = vec![
            ("SESAME_ACCESS_KEY_ID", harness::KEY_ID),
            ("SESAME_SECRET_ACCESS_KEY", harness::SECRET),
            ("SESAME_RESOLVER", resolver.as_str()),
            ("SESAME_KEY_POOL_2048", "0"),
            ("SESAME_KEY_POOL_1024", "0"),
            ("SESAME_LOG", "info"),
            ("SESAME_ADMIN_ADDR", "127.0.0.1:0"),
        ];
        all.extend_from_slice(env);
        Proc::spawn(&args, &all)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (`INT`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output satisfies `done`, or fails at the deadline (also if the process
    /// exited without it).
    pub fn wait_output(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let out = self.output();
            if done(&out) {
                return out;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                self.join_readers();
                let out = self.output();
                if done(&out) {
                    return out;
                }
                panic!("sesame exited ({status}) without {what}:\n{out}");
            }
            assert!(Instant::now() < deadline, "never {what}:\n{out}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The API and DNS addresses of the `listening` line.
    pub fn listening(&mut self) -> (SocketAddr, SocketAddr) {
        let out = self.wait_output("listening", |o| o.contains("listening api="));
        let rest = out.split("listening api=").nth(1).unwrap();
        let mut parts = rest.split_whitespace();
        let api = parts.next().unwrap().parse().unwrap();
        let dns = parts
            .next()
            .and_then(|d| d.strip_prefix("dns="))
            .unwrap()
            .parse()
            .unwrap();
        (api, dns)
    }

    /// The admin address of the `listening` line.
    pub fn admin(&mut self) -> SocketAddr {
        let out = self.wait_output("listening", |o| o.contains("listening api="));
        let rest = out.split("listening api=").nth(1).unwrap();
        rest.split_whitespace()
            .find_map(|p| p.strip_prefix("admin="))
            .expect("admin= in the listening line")
            .parse()
            .unwrap()
    }

    /// Waits for the process to exit on its own (failing at the deadline) and returns its
    /// status, with the output complete.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                self.join_readers();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sesame did not exit within {DEADLINE:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// For a start that must fail: waits for the exit and returns its status, failing at
    /// once if the server reports listening instead.
    pub fn failed_start(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.as_mut().expect("running").try_wait().unwrap() {
                self.child = None;
                self.join_readers();
                return status;
            }
            let out = self.output();
            assert!(!out.contains("listening api="), "it started:\n{out}");
            assert!(
                Instant::now() < deadline,
                "sesame neither started nor exited within {DEADLINE:?}:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.join_readers();
        }
        if std::thread::panicking() {
            eprintln!("---- sesame output ----\n{}", self.output());
        }
    }
}
