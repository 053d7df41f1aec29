//! Power loss: `kill -9` leaves every written page in the kernel's cache, so a store that never
//! fsyncs would pass the crash tests. Here the real `sesame` binary runs under an LD_PRELOAD
//! shim (`shim.c`) that records what each fsync/fdatasync made durable; after `kill -9` the
//! data directory is rebuilt from that record alone (`rebuild.rs`: unsynced data and names
//! gone, as after a power cut), a server starts on the rebuilt directory, and every write the
//! API acknowledged before the kill must be there: identities with their DKIM tokens, tags,
//! a deletion, and each SendEmail's message in the outbox, whole.

#[allow(dead_code)]
#[path = "../crash/customerdns.rs"]
mod customerdns;
#[allow(dead_code)]
#[path = "../it/fakedns.rs"]
mod fakedns;
#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;

mod burst;
mod rebuild;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{DkimStatus, Tag};
use customerdns::CustomerDns;
use harness::Server;
use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `customerdns` drew its (here unused) answer delays from `crate::Rng` before it got its own.
#[allow(dead_code)]
pub struct Rng(u64);

#[allow(dead_code)]
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) % n
    }
}

const ZONE: &str = "dkim.sesame.internal";
const SENDER: &str = "send.powerloss.test";
const DELETED: &str = "gone.powerloss.test";

/// Compiles `shim.c` into `dir`; `cc` is required (it is on every machine that runs the suite).
fn build_shim(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/powerloss/shim.c");
    let out = dir.join("shim.so");
    let result = Command::new("cc")
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .output()
        .unwrap_or_else(|e| panic!("the power-loss shim needs a C compiler (cc): {e}"));
    assert!(
        result.status.success(),
        "compiling {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

fn private_dir(path: &Path) {
    std::fs::DirBuilder::new().mode(0o700).create(path).unwrap();
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

/// A client whose every call gives up after 60 s (a hung server fails the test, not the
/// suite's clock) and never retries (an acknowledgement is one answer).
fn client(server: &Server) -> Client {
    use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(harness::REGION))
        .endpoint_url(format!("http://{}", server.api))
        .credentials_provider(Credentials::new(
            harness::KEY_ID,
            harness::SECRET,
            None,
            None,
            "powerloss",
        ))
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_sesv2::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(conf)
}

/// Polls (up to 60 s) until `name`'s DKIM status is SUCCESS.
async fn wait_verified(c: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = c.get_email_identity().email_identity(name).send().await;
        let status = got
            .as_ref()
            .ok()
            .and_then(|g| g.dkim_attributes().and_then(|d| d.status().cloned()));
        if status == Some(DkimStatus::Success) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never verified within 60 s (last: {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the API acknowledged before the kill.
#[derive(Debug, Default)]
struct Acked {
    /// Identity name → (DKIM tokens, tags).
    identities: BTreeMap<String, (Vec<String>, BTreeMap<String, String>)>,
    deleted: Vec<String>,
    /// SendEmail message ids.
    sent: Vec<String>,
}

enum Done {
    Created(String, Vec<String>, BTreeMap<String, String>),
    Tagged(String, String, String),
    Deleted(String),
    Sent(String),
}

/// Concurrent creates (domains with Easy DKIM, addresses, some with tags), tags, a delete and
/// sends, so commits overlap and share fsyncs; returns once every one was acknowledged.
async fn writes(server: &Server, c: &Client) -> Acked {
    let mut acked = Acked::default();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let c = c.clone();
        set.spawn(async move {
            let name = if i % 2 == 0 {
                format!("d{i}.powerloss.test")
            } else {
                format!("user{i}@powerloss.test")
            };
            let mut tags = BTreeMap::new();
            let mut req = c.create_email_identity().email_identity(&name);
            if i % 3 == 0 {
                tags.insert("created".to_owned(), format!("v{i}"));
                req = req.tags(tag("created", &format!("v{i}")));
            }
            let out = req.send().await.unwrap();
            let tokens = out
                .dkim_attributes()
                .map(|d| d.tokens().to_vec())
                .unwrap_or_default();
            vec![Done::Created(name, tokens, tags)]
        });
    }
    for i in 0..6 {
        let c = c.clone();
        set.spawn(async move {
            let id = burst::send(&c, &format!("power loss {i}")).await.unwrap();
            vec![Done::Sent(id)]
        });
    }
    {
        let (c, arn) = (c.clone(), server.arn(SENDER));
        set.spawn(async move {
            c.tag_resource()
                .resource_arn(arn)
                .tags(tag("team", "mail"))
                .send()
                .await
                .unwrap();
            vec![Done::Tagged(SENDER.into(), "team".into(), "mail".into())]
        });
    }
    {
        let c = c.clone();
        set.spawn(async move {
            c.delete_email_identity()
                .email_identity(DELETED)
                .send()
                .await
                .unwrap();
            vec![Done::Deleted(DELETED.into())]
        });
    }
    let mut tagged = Vec::new();
    while let Some(r) = set.join_next().await {
        for d in r.unwrap() {
            match d {
                Done::Created(n, tokens, tags) => {
                    acked.identities.insert(n, (tokens, tags));
                }
                Done::Tagged(n, k, v) => tagged.push((n, k, v)),
                Done::Deleted(n) => acked.deleted.push(n),
                Done::Sent(id) => acked.sent.push(id),
            }
        }
    }
    for (n, k, v) in tagged {
        acked.identities.entry(n).or_default().1.insert(k, v);
    }
    acked
}

/// Every acknowledged write, as the server on the rebuilt directory shows it; returns what
/// differs.
async fn check(restarted: &Server, original: &Path, acked: &Acked) -> Vec<String> {
    let c = client(restarted);
    let mut problems = Vec::new();
    for (name, (tokens, tags)) in &acked.identities {
        match c.get_email_identity().email_identity(name).send().await {
            Err(e) => problems.push(format!("identity {name} is gone: {e:?}")),
            Ok(got) => {
                let now: Vec<String> = got
                    .dkim_attributes()
                    .map(|d| d.tokens().to_vec())
                    .unwrap_or_default();
                if &now != tokens {
                    problems.push(format!("{name}: tokens {now:?}, acknowledged {tokens:?}"));
                }
                let now: BTreeMap<String, String> = got
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect();
                if &now != tags {
                    problems.push(format!("{name}: tags {now:?}, acknowledged {tags:?}"));
                }
            }
        }
    }
    for name in &acked.deleted {
        if c.get_email_identity()
            .email_identity(name)
            .send()
            .await
            .is_ok()
        {
            problems.push(format!("{name} was deleted, and is back"));
        }
    }
    match c.list_email_identities().page_size(1000).send().await {
        Ok(l) if l.email_identities().len() == acked.identities.len() => {}
        Ok(l) => problems.push(format!(
            "{} identities listed, {} acknowledged",
            l.email_identities().len(),
            acked.identities.len()
        )),
        Err(e) => problems.push(format!("ListEmailIdentities: {e:?}")),
    }
    let outbox = restarted.data_dir.join("outbox");
    for id in &acked.sent {
        let file = format!("{id}.eml");
        let before = std::fs::read(original.join("outbox").join(&file)).unwrap();
        match std::fs::read(outbox.join(&file)) {
            Err(e) => problems.push(format!("message {file} is not in the outbox: {e}")),
            Ok(after) if after != before => problems.push(format!(
                "message {file} has {} bytes, {} were written",
                after.len(),
                before.len()
            )),
            Ok(after) => {
                if !String::from_utf8_lossy(&after).contains("DKIM-Signature:") {
                    problems.push(format!("message {file} is not signed"));
                }
            }
        }
    }
    problems
}

/// `<call> <path>` lines of the shim's calls.log, counted by call and file name.
fn calls(shadow: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(shadow.join("calls.log")).unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((call, path)) = line.split_once(' ') else {
            continue;
        };
        let file = Path::new(path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Outbox messages by kind, not one line per message.
        let file = if file.ends_with(".tmp") {
            "outbox/.<id>.tmp".to_owned()
        } else {
            file
        };
        *out.entry(format!("{call} {file}")).or_default() += 1;
    }
    out
}

/// A data directory whose server runs under the shim, the shim's record, and the customers'
/// DNS the verifier asks.
pub struct Rig {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    shim: PathBuf,
    pub data: PathBuf,
    shadow: PathBuf,
    pub customers: CustomerDns,
    resolver: String,
}

impl Rig {
    pub fn start() -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let shim = build_shim(&base);
        let data = base.join("data");
        private_dir(&data);
        let shadow = base.join("shadow");
        private_dir(&shadow);
        for sub in ["files", "dirs", "tmp"] {
            private_dir(&shadow.join(sub));
        }
        let customers = CustomerDns::start(ZONE);
        let resolver = customers.addr.to_string();
        Rig {
            _tmp: tmp,
            base,
            shim,
            data,
            shadow,
            customers,
            resolver,
        }
    }

    /// The settings of every server here, with or without the shim.
    pub fn common(&self) -> Vec<(&str, &str)> {
        vec![
            ("SESAME_RESOLVER", self.resolver.as_str()),
            ("SESAME_VERIFY_INTERVAL", "300ms"),
            ("SESAME_RATE_LIMIT", "0"),
            ("SESAME_LOG", "info,hickory_server=warn"),
        ]
    }

    /// The server on `data`, its syncs recorded by the shim.
    pub fn start_under_shim(&self) -> Server {
        let mut env = self.common();
        env.extend([
            ("LD_PRELOAD", self.shim.to_str().unwrap()),
            ("SESAME_POWERLOSS_ROOT", self.data.to_str().unwrap()),
            ("SESAME_POWERLOSS_SHADOW", self.shadow.to_str().unwrap()),
        ]);
        Server::start_in(&self.data, &env)
    }

    /// After the server was killed: `data` as a power cut would have left it, in a new
    /// directory (what `rebuild` restored is in the second value).
    pub fn power_cut_with(&self) -> (PathBuf, Vec<rebuild::Restored>) {
        for log in ["errors.log", "unmodelled.log"] {
            let path = self.shadow.join(log);
            assert!(
                !path.exists(),
                "the shim's {log}:\n{}",
                std::fs::read_to_string(&path).unwrap_or_default()
            );
        }
        let root_key = rebuild::key(&std::fs::metadata(&self.data).unwrap());
        assert!(
            rebuild::has_listing(&self.shadow, &root_key),
            "the shim recorded nothing for the data directory (key {root_key}); calls: {:?}",
            calls(&self.shadow)
        );
        let rebuilt = self.base.join("rebuilt");
        private_dir(&rebuilt);
        let restored = rebuild::rebuild(&self.shadow, &root_key, &rebuilt);
        (rebuilt, restored)
    }

    pub fn power_cut(&self) -> PathBuf {
        self.power_cut_with().0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_power_cut() {
    let began = Instant::now();
    let rig = Rig::start();
    let data = rig.data.clone();
    let mut server = rig.start_under_shim();
    let c = client(&server);

    // Set-up: a verified sender domain (so SendEmail signs) and an identity to delete.
    c.create_email_identity()
        .email_identity(SENDER)
        .send()
        .await
        .unwrap();
    c.create_email_identity()
        .email_identity(DELETED)
        .send()
        .await
        .unwrap();
    wait_verified(&c, SENDER).await;
    let sender_tokens = c
        .get_email_identity()
        .email_identity(SENDER)
        .send()
        .await
        .unwrap()
        .dkim_attributes()
        .unwrap()
        .tokens()
        .to_vec();

    // Messages a checkpoint (every second) has moved from the spool to the synced outbox.
    let mut early = Vec::new();
    for i in 0..3 {
        early.push(
            burst::send(&c, &format!("before a checkpoint {i}"))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut acked = writes(&server, &c).await;
    acked.sent.extend(early);
    acked
        .identities
        .get_mut(SENDER)
        .expect("the sender was tagged")
        .0 = sender_tokens;
    // The power cut, right after the last acknowledgement.
    server.kill9();
    drop(c);
    // Written and never synced (by this process, which runs without the shim): a power cut
    // loses it, so the rebuilt directory must not have its content.
    let probe = "unsynced-probe";
    std::fs::write(data.join(probe), b"never synced").unwrap();

    let calls = calls(&rig.shadow);
    let (rebuilt, restored) = rig.power_cut_with();
    let mut files = Vec::new();
    let mut messages = 0;
    for r in &restored {
        let now = std::fs::metadata(data.join(&r.path)).map_or(0, |m| m.len());
        if r.path.starts_with("outbox") && r.path.extension().is_some_and(|e| e == "eml") {
            messages += 1;
            continue;
        }
        files.push(format!(
            "{} {}/{} B{}",
            r.path.display(),
            r.len,
            now,
            if r.synced { "" } else { " (never synced)" }
        ));
    }
    let probe_back = std::fs::read(rebuilt.join(probe)).unwrap_or_default();
    assert!(
        probe_back.is_empty(),
        "an unsynced write survived the rebuild: {probe_back:?}"
    );

    let restarted = Server::start_in(&rebuilt, &rig.common());
    let mut problems = Vec::new();
    if restarted.account != server.account {
        problems.push(format!(
            "default account {} after the power cut, {} before",
            restarted.account, server.account
        ));
    }
    problems.extend(check(&restarted, &data, &acked).await);
    harness::say(&format!(
        "power loss: acknowledged {} identities, 1 tag, 1 delete, {} SendEmail; the shim saw {calls:?}; rebuilt (bytes after the cut/before): {}, outbox {messages}/{} messages; {} problems, {:.1} s",
        acked.identities.len(),
        acked.sent.len(),
        files.join(", "),
        acked.sent.len(),
        problems.len(),
        began.elapsed().as_secs_f64(),
    ));
    assert!(
        problems.is_empty(),
        "acknowledged writes lost in the power cut:\n{}",
        problems.join("\n")
    );
}

/// The master key is synced on its own: here the power cut comes before any mail, so no
/// checkpoint's `syncfs` has made it durable by the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_survives_a_power_cut_before_any_mail() {
    let rig = Rig::start();
    let mut server = rig.start_under_shim();
    client(&server)
        .create_email_identity()
        .email_identity(SENDER)
        .send()
        .await
        .unwrap();
    server.kill9();
    let calls = calls(&rig.shadow);
    assert!(
        !calls.keys().any(|c| c.starts_with("syncfs")),
        "no syncfs before the cut: {calls:?}"
    );
    let rebuilt = rig.power_cut();
    let restarted = Server::start_in(&rebuilt, &rig.common());
    assert_eq!(restarted.account, server.account, "the default account");
    let got = client(&restarted)
        .get_email_identity()
        .email_identity(SENDER)
        .send()
        .await;
    assert!(
        got.is_ok(),
        "the identity, read with the bootstrap key: {got:?}"
    );
}
