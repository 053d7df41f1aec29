//! The load of a crash trial and the ledger of what it was told. Each worker owns its names,
//! so at most one request per identity is in flight; before a request goes out the ledger notes
//! what the identity would look like if it were applied, and when the response arrives
//! (acknowledged) that becomes what the identity must look like after any crash. A refusal
//! (4xx) changes nothing; a request cut off by the kill may or may not have been applied.

use crate::Rng;
use crate::customerdns::CustomerDns;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{
    Body, Content, Destination, DkimSigningAttributes, DkimSigningAttributesOrigin,
    DkimSigningKeyLength, EmailContent, Message, RawMessage, Tag,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub const LEN_2048: &str = "RSA_2048_BIT";
pub const LEN_1024: &str = "RSA_1024_BIT";

/// An identity's DKIM as the client can know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dk {
    /// Easy DKIM; `tokens` is `None` while a create or switch is unanswered (any tokens).
    Easy {
        tokens: Option<Vec<String>>,
        next_len: String,
    },
    /// BYODKIM with this selector and public key.
    Byo {
        selector: String,
        public_der: Vec<u8>,
    },
}

/// What an existing identity must look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// `None` for address identities.
    pub dkim: Option<Dk>,
    /// DKIM signing enabled (domains; always true for addresses, which the load never flips).
    pub signing: bool,
    pub tags: BTreeMap<String, String>,
}

impl Shape {
    /// Whether `got` is this shape (unknown tokens match any).
    pub fn admits(&self, got: &Shape) -> bool {
        let dkim = match (&self.dkim, &got.dkim) {
            (
                Some(Dk::Easy { tokens, next_len }),
                Some(Dk::Easy {
                    tokens: t2,
                    next_len: n2,
                }),
            ) => next_len == n2 && (tokens.is_none() || tokens == t2),
            (a, b) => a == b,
        };
        dkim && self.signing == got.signing && self.tags == got.tags
    }
}

/// `None`: the identity does not exist.
pub type State = Option<Shape>;

pub fn admits(expected: &State, got: &State) -> bool {
    match (expected, got) {
        (None, None) => true,
        (Some(e), Some(g)) => e.admits(g),
        _ => false,
    }
}

/// One identity in the ledger.
#[derive(Debug, Default)]
pub struct Track {
    /// The state the acknowledged writes left.
    pub ack: State,
    /// The request in flight (if any) and the state it would leave.
    pub pending: Option<(String, State)>,
    /// This trial's acknowledged writes, for reports.
    pub history: Vec<String>,
}

/// An acknowledged SendEmail.
#[derive(Debug)]
pub struct Sent {
    pub id: String,
    pub marker: String,
    /// For Raw content, the exact bytes sent (the outbox file ends with them).
    pub raw: Option<Vec<u8>>,
}

/// An acknowledged `sesame rotate`.
#[derive(Debug)]
pub struct Rotation {
    pub domain: String,
    pub staged_token: String,
    /// Unix ms before the CLI started: the staged key is at least this new.
    pub started_ms: i64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub names: BTreeMap<String, Track>,
    pub sends: Vec<Sent>,
    pub rotations: Vec<Rotation>,
    /// Acknowledged writes this trial (identity writes, sends, rotations).
    pub acked: u64,
    pub refused: u64,
    /// `sesame rotate` runs killed on their own.
    pub cli_killed: u64,
    /// Refusals by operation and error code.
    pub refusals: BTreeMap<String, u64>,
    /// Acknowledged writes by operation.
    pub ops: BTreeMap<String, u64>,
    /// Identity writes sent, by operation.
    pub attempts: BTreeMap<String, u64>,
    pub cut_off: u64,
    /// Things that should not happen even without a crash (5xx answers, refused sends).
    pub surprises: Vec<String>,
}

impl Ledger {
    pub fn track(&mut self, name: &str) -> &mut Track {
        self.names.entry(name.to_owned()).or_default()
    }

    pub fn ack_state(&self, name: &str) -> State {
        self.names.get(name).and_then(|t| t.ack.clone())
    }
}

/// A BYODKIM key the test made: base64 DER private key and SubjectPublicKeyInfo DER.
#[derive(Debug, Clone)]
pub struct ByoKey {
    pub private_b64: String,
    pub public_der: Vec<u8>,
}

pub fn make_keys(n1024: usize, n2048: usize) -> Vec<ByoKey> {
    let mut out = Vec::new();
    for (i, bits) in std::iter::repeat_n(1024, n1024)
        .chain(std::iter::repeat_n(2048, n2048))
        .enumerate()
    {
        let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
        let pkey = openssl::pkey::PKey::from_rsa(rsa.clone()).unwrap();
        let der = if i % 2 == 0 {
            rsa.private_key_to_der().unwrap()
        } else {
            pkey.private_key_to_pkcs8().unwrap()
        };
        out.push(ByoKey {
            private_b64: data_encoding::BASE64.encode(&der),
            public_der: pkey.public_key_to_der().unwrap(),
        });
    }
    out
}

enum Outcome<T> {
    Ok(T),
    Refused(String),
    CutOff(String),
}

fn classify<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> Outcome<T> {
    match r {
        Ok(t) => Outcome::Ok(t),
        Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() < 500 => {
            Outcome::Refused(se.err().code().unwrap_or("?").to_owned())
        }
        Err(e) => Outcome::CutOff(format!("{e:?}")),
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

const TAG_KEYS: [&str; 6] = ["env", "team", "k0", "k1", "k2", "cost-centre"];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Everything a worker needs; cheap to clone.
#[derive(Clone)]
pub struct Load {
    pub client: Client,
    pub arn_prefix: String,
    pub ledger: Arc<Mutex<Ledger>>,
    pub keys: Arc<Vec<ByoKey>>,
    pub dns: Arc<CustomerDns>,
    pub selectors: Arc<AtomicU64>,
    pub data_dir: PathBuf,
    pub stop: watch::Receiver<bool>,
}

impl Load {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn new_selector(&self) -> String {
        format!("s{}", self.selectors.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs one write: notes what it would leave, sends it, and records the outcome. Returns
    /// whether the worker may go on (false once the server is gone).
    async fn write<T>(
        &self,
        name: &str,
        what: String,
        refusable: &[&str],
        would_leave: State,
        request: impl std::future::Future<Output = Outcome<T>>,
        leaves: impl FnOnce(T, &State, &mut Vec<String>) -> State,
    ) -> bool {
        let label: Vec<&str> = what
            .split_whitespace()
            .take_while(|w| !w.contains(['=', '[', '(']))
            .collect();
        let label = label.join(" ");
        {
            let mut l = self.ledger.lock().unwrap();
            *l.attempts.entry(label.clone()).or_default() += 1;
            l.track(name).pending = Some((what.clone(), would_leave));
        }
        let outcome = request.await;
        let mut l = self.ledger.lock().unwrap();
        match outcome {
            Outcome::Ok(out) => {
                let before = l.ack_state(name);
                let after = leaves(out, &before, &mut l.surprises);
                let t = l.track(name);
                t.ack = after;
                t.pending = None;
                t.history.push(what);
                l.acked += 1;
                *l.ops.entry(label).or_default() += 1;
                true
            }
            Outcome::Refused(code) => {
                l.track(name).pending = None;
                l.refused += 1;
                *l.refusals.entry(format!("{label}: {code}")).or_default() += 1;
                // A conflict with the verifier may refuse any write (after the service's
                // retries); other refusals only where the request asks for one.
                if code != "ConcurrentModificationException" && !refusable.contains(&code.as_str())
                {
                    l.surprises.push(format!("{name}: {what} refused: {code}"));
                }
                true
            }
            Outcome::CutOff(e) => {
                l.cut_off += 1;
                if !self.stopped() {
                    l.surprises
                        .push(format!("{name}: {what} failed before the kill: {e}"));
                }
                false
            }
        }
    }

    pub async fn create_easy(
        &self,
        name: &str,
        len: Option<&str>,
        tags: &[(String, String)],
    ) -> bool {
        let next_len = len.unwrap_or(LEN_2048).to_owned();
        let shape = Shape {
            dkim: Some(Dk::Easy {
                tokens: None,
                next_len: next_len.clone(),
            }),
            signing: true,
            tags: tags.iter().cloned().collect(),
        };
        let mut req = self.client.create_email_identity().email_identity(name);
        if let Some(l) = len {
            req = req.dkim_signing_attributes(
                DkimSigningAttributes::builder()
                    .next_signing_key_length(DkimSigningKeyLength::from(l))
                    .build(),
            );
        }
        for (k, v) in tags {
            req = req.tags(tag(k, v));
        }
        let what = format!("CreateEmailIdentity Easy {next_len} tags={tags:?}");
        self.write(
            name,
            what,
            &[],
            Some(shape.clone()),
            async { classify(req.send().await) },
            move |out, _, _| {
                let tokens = out
                    .dkim_attributes()
                    .map(|d| d.tokens().to_vec())
                    .unwrap_or_default();
                Some(Shape {
                    dkim: Some(Dk::Easy {
                        tokens: Some(tokens),
                        next_len,
                    }),
                    ..shape
                })
            },
        )
        .await
    }

    pub async fn create_byo(
        &self,
        name: &str,
        selector: &str,
        key: &ByoKey,
        tags: &[(String, String)],
    ) -> bool {
        let shape = Shape {
            dkim: Some(Dk::Byo {
                selector: selector.to_owned(),
                public_der: key.public_der.clone(),
            }),
            signing: true,
            tags: tags.iter().cloned().collect(),
        };
        let mut req = self
            .client
            .create_email_identity()
            .email_identity(name)
            .dkim_signing_attributes(
                DkimSigningAttributes::builder()
                    .domain_signing_selector(selector)
                    .domain_signing_private_key(&key.private_b64)
                    .build(),
            );
        for (k, v) in tags {
            req = req.tags(tag(k, v));
        }
        let what = format!("CreateEmailIdentity BYODKIM selector={selector} tags={tags:?}");
        let s = Some(shape);
        self.write(
            name,
            what,
            &[],
            s.clone(),
            async { classify(req.send().await) },
            move |_, _, _| s,
        )
        .await
    }

    async fn create_address(&self, name: &str, tags: &[(String, String)]) -> bool {
        let shape = Shape {
            dkim: None,
            signing: true,
            tags: tags.iter().cloned().collect(),
        };
        let mut req = self.client.create_email_identity().email_identity(name);
        for (k, v) in tags {
            req = req.tags(tag(k, v));
        }
        let s = Some(shape);
        self.write(
            name,
            format!("CreateEmailIdentity address tags={tags:?}"),
            &[],
            s.clone(),
            async { classify(req.send().await) },
            move |_, _, _| s,
        )
        .await
    }

    async fn delete(&self, name: &str) -> bool {
        let req = self.client.delete_email_identity().email_identity(name);
        self.write(
            name,
            "DeleteEmailIdentity".into(),
            &[],
            None,
            async { classify(req.send().await) },
            |_, _, _| None,
        )
        .await
    }

    pub async fn tag(&self, name: &str, cur: &Shape, tags: &[(String, String)]) -> bool {
        let mut next = cur.clone();
        for (k, v) in tags {
            next.tags.insert(k.clone(), v.clone());
        }
        let mut req = self
            .client
            .tag_resource()
            .resource_arn(format!("{}{name}", self.arn_prefix));
        for (k, v) in tags {
            req = req.tags(tag(k, v));
        }
        let tags = tags.to_vec();
        self.write(
            name,
            format!("TagResource {tags:?}"),
            &[],
            Some(next),
            async { classify(req.send().await) },
            move |_, before, _| {
                before.clone().map(|mut s| {
                    s.tags.extend(tags);
                    s
                })
            },
        )
        .await
    }

    pub async fn untag(&self, name: &str, cur: &Shape, keys: &[String]) -> bool {
        let mut next = cur.clone();
        next.tags.retain(|k, _| !keys.contains(k));
        let mut req = self
            .client
            .untag_resource()
            .resource_arn(format!("{}{name}", self.arn_prefix));
        for k in keys {
            req = req.tag_keys(k);
        }
        let keys = keys.to_vec();
        self.write(
            name,
            format!("UntagResource {keys:?}"),
            &[],
            Some(next),
            async { classify(req.send().await) },
            move |_, before, _| {
                before.clone().map(|mut s| {
                    s.tags.retain(|k, _| !keys.contains(k));
                    s
                })
            },
        )
        .await
    }

    pub async fn set_signing(&self, name: &str, cur: &Shape, enabled: bool) -> bool {
        let next = Shape {
            signing: enabled,
            ..cur.clone()
        };
        let req = self
            .client
            .put_email_identity_dkim_attributes()
            .email_identity(name)
            .signing_enabled(enabled);
        self.write(
            name,
            format!("PutEmailIdentityDkimAttributes SigningEnabled={enabled}"),
            &[],
            Some(next),
            async { classify(req.send().await) },
            move |_, before, _| {
                before.clone().map(|mut s| {
                    s.signing = enabled;
                    s
                })
            },
        )
        .await
    }

    /// PutEmailIdentityDkimSigningAttributes to BYODKIM (a new selector and key).
    pub async fn switch_to_byo(
        &self,
        name: &str,
        cur: &Shape,
        selector: &str,
        key: &ByoKey,
    ) -> bool {
        let dk = Dk::Byo {
            selector: selector.to_owned(),
            public_der: key.public_der.clone(),
        };
        let next = Shape {
            dkim: Some(dk.clone()),
            ..cur.clone()
        };
        let req = self
            .client
            .put_email_identity_dkim_signing_attributes()
            .email_identity(name)
            .signing_attributes_origin(DkimSigningAttributesOrigin::External)
            .signing_attributes(
                DkimSigningAttributes::builder()
                    .domain_signing_selector(selector)
                    .domain_signing_private_key(&key.private_b64)
                    .build(),
            );
        self.write(
            name,
            format!("PutEmailIdentityDkimSigningAttributes EXTERNAL selector={selector}"),
            &[],
            Some(next),
            async { classify(req.send().await) },
            move |_, before, _| {
                before.clone().map(|mut s| {
                    s.dkim = Some(dk);
                    s
                })
            },
        )
        .await
    }

    /// PutEmailIdentityDkimSigningAttributes to Easy DKIM: from BYODKIM new tokens, on Easy a
    /// key-length change (`NextSigningKeyLength`) with the same tokens.
    async fn put_easy(&self, name: &str, cur: &Shape, len: Option<&str>) -> bool {
        let from_easy = matches!(cur.dkim, Some(Dk::Easy { .. }));
        let (tokens, next_len) = match &cur.dkim {
            Some(Dk::Easy { tokens, next_len }) => (
                tokens.clone(),
                len.map(str::to_owned).unwrap_or(next_len.clone()),
            ),
            _ => (None, len.unwrap_or(LEN_2048).to_owned()),
        };
        let next = Shape {
            dkim: Some(Dk::Easy {
                tokens: tokens.clone(),
                next_len: next_len.clone(),
            }),
            ..cur.clone()
        };
        let mut req = self
            .client
            .put_email_identity_dkim_signing_attributes()
            .email_identity(name)
            .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes);
        if let Some(l) = len {
            req = req.signing_attributes(
                DkimSigningAttributes::builder()
                    .next_signing_key_length(DkimSigningKeyLength::from(l))
                    .build(),
            );
        }
        let owned = name.to_owned();
        self.write(
            name,
            format!(
                "PutEmailIdentityDkimSigningAttributes AWS_SES {} NextSigningKeyLength={len:?}",
                if from_easy {
                    "key-length-change"
                } else {
                    "from-BYODKIM"
                }
            ),
            // The once-a-day rule may refuse a key-length change.
            if from_easy {
                &["BadRequestException"]
            } else {
                &[]
            },
            Some(next),
            async { classify(req.send().await) },
            move |out, before, surprises| {
                let got = out.dkim_tokens().to_vec();
                if let Some(t) = &tokens
                    && t != &got
                {
                    surprises.push(format!(
                        "{owned}: a key-length change answered new tokens {got:?}, had {t:?}"
                    ));
                }
                before.clone().map(|mut s| {
                    s.dkim = Some(Dk::Easy {
                        tokens: Some(got),
                        next_len,
                    });
                    s
                })
            },
        )
        .await
    }

    /// A request that must be refused and change nothing: a duplicate CreateEmailIdentity, or
    /// a TagResource whose second tag is invalid (the first must not be applied either).
    async fn refused(&self, name: &str, cur: &Shape, duplicate: bool) -> bool {
        type Request = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome<()>> + Send>>;
        let (what, request): (&str, Request) = if duplicate {
            let req = self.client.create_email_identity().email_identity(name);
            (
                "CreateEmailIdentity duplicate",
                Box::pin(async move { classify(req.send().await.map(|_| ())) }),
            )
        } else {
            let req = self
                .client
                .tag_resource()
                .resource_arn(format!("{}{name}", self.arn_prefix))
                .tags(tag("k0", "refused"))
                .tags(tag("aws:reserved", "x"));
            (
                "TagResource with a reserved key",
                Box::pin(async move { classify(req.send().await.map(|_| ())) }),
            )
        };
        let said = format!("{name}: {what} was acknowledged");
        self.write(
            name,
            what.to_owned(),
            if duplicate {
                &["AlreadyExistsException"]
            } else {
                &["BadRequestException"]
            },
            Some(cur.clone()),
            request,
            move |_, before, surprises| {
                surprises.push(said);
                before.clone()
            },
        )
        .await
    }

    fn random_tags(rng: &mut Rng, n: usize) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for _ in 0..n {
            let k = TAG_KEYS[rng.below(TAG_KEYS.len() as u64) as usize].to_owned();
            if out.iter().all(|(x, _)| *x != k) {
                out.push((k, format!("v{}", rng.below(1000))));
            }
        }
        out
    }

    /// Random writes on `names` until the server is gone. `structural`: also creates, deletes
    /// and DKIM set-up changes (otherwise tags and signing only, on identities that exist).
    pub async fn churn(self, names: Vec<String>, mut rng: Rng, structural: bool) {
        while !self.stopped() {
            let name = rng.pick(&names).clone();
            let cur = self.ledger.lock().unwrap().ack_state(&name);
            let domain = !name.contains('@');
            let go_on = match cur {
                None if !structural => true,
                None => {
                    let tags = if rng.chance(50) {
                        let n = 1 + rng.below(3) as usize;
                        Self::random_tags(&mut rng, n)
                    } else {
                        vec![]
                    };
                    if !domain {
                        self.create_address(&name, &tags).await
                    } else {
                        match rng.below(100) {
                            0..10 => self.create_easy(&name, None, &tags).await,
                            10..55 => self.create_easy(&name, Some(LEN_1024), &tags).await,
                            _ => {
                                let key = rng.pick(&self.keys).clone();
                                let sel = self.new_selector();
                                self.dns.publish_key(&sel, &name, &key.public_der);
                                self.create_byo(&name, &sel, &key, &tags).await
                            }
                        }
                    }
                }
                Some(cur) => {
                    let roll = rng.below(100);
                    match roll {
                        0..35 => {
                            let n = 1 + rng.below(3) as usize;
                            let tags = Self::random_tags(&mut rng, n);
                            self.tag(&name, &cur, &tags).await
                        }
                        35..50 => {
                            let keys: Vec<String> = (0..1 + rng.below(2))
                                .map(|_| {
                                    TAG_KEYS[rng.below(TAG_KEYS.len() as u64) as usize].to_owned()
                                })
                                .collect();
                            self.untag(&name, &cur, &keys).await
                        }
                        50..65 if domain => self.set_signing(&name, &cur, !cur.signing).await,
                        65..84 if domain && structural => match &cur.dkim {
                            Some(Dk::Easy { next_len, .. }) if rng.chance(45) => {
                                let other = if next_len == LEN_2048 {
                                    LEN_1024
                                } else {
                                    LEN_2048
                                };
                                self.put_easy(&name, &cur, Some(other)).await
                            }
                            Some(Dk::Byo { .. }) if rng.chance(50) => {
                                let len = [None, Some(LEN_1024)][rng.below(2) as usize];
                                self.put_easy(&name, &cur, len).await
                            }
                            _ => {
                                let key = rng.pick(&self.keys).clone();
                                let sel = self.new_selector();
                                self.dns.publish_key(&sel, &name, &key.public_der);
                                self.switch_to_byo(&name, &cur, &sel, &key).await
                            }
                        },
                        84..90 => {
                            self.refused(&name, &cur, rng.chance(50) && structural)
                                .await
                        }
                        _ if structural => self.delete(&name).await,
                        _ => true,
                    }
                }
            };
            if !go_on {
                return;
            }
        }
    }

    /// SendEmail from addresses of `senders` (verified domains) until the server is gone.
    pub async fn send(self, senders: Vec<String>, worker: usize, mut rng: Rng) {
        let mut n = 0;
        while !self.stopped() {
            n += 1;
            let domain = rng.pick(&senders).clone();
            let marker = format!("w{worker}n{n}r{}", rng.below(1 << 30));
            let from = format!("sender{}@{domain}", rng.below(5));
            let mut body = String::new();
            // Mostly small messages, now and then a big one.
            let lines = if rng.chance(10) {
                2000
            } else {
                1 + rng.below(40)
            };
            for i in 0..lines {
                body.push_str(&format!(
                    "Line {i} of message {marker}: the quick brown fox jumps over the lazy dog.\r\n"
                ));
            }
            body.push_str(&format!("END {marker}\r\n"));
            let dest = Destination::builder()
                .to_addresses("rcpt@example.net")
                .bcc_addresses("hidden@example.net")
                .build();
            let (req, raw) = if rng.chance(50) {
                let raw = format!(
                    "From: {from}\r\nTo: rcpt@example.net\r\nSubject: crash trial {marker}\r\nMessage-ID: <{marker}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
                )
                .into_bytes();
                (
                    self.client.send_email().destination(dest).content(
                        EmailContent::builder()
                            .raw(
                                RawMessage::builder()
                                    .data(Blob::new(raw.clone()))
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    ),
                    Some(raw),
                )
            } else {
                let content = EmailContent::builder()
                    .simple(
                        Message::builder()
                            .subject(
                                Content::builder()
                                    .data(format!("crash trial {marker}"))
                                    .build()
                                    .unwrap(),
                            )
                            .body(
                                Body::builder()
                                    .text(
                                        Content::builder()
                                            .data(body.replace("\r\n", "\n"))
                                            .build()
                                            .unwrap(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build();
                (
                    self.client
                        .send_email()
                        .from_email_address(&from)
                        .destination(dest)
                        .content(content),
                    None,
                )
            };
            let outcome = classify(req.send().await);
            let mut l = self.ledger.lock().unwrap();
            match outcome {
                Outcome::Ok(out) => {
                    l.acked += 1;
                    *l.ops.entry("SendEmail".into()).or_default() += 1;
                    l.sends.push(Sent {
                        id: out.message_id().unwrap_or_default().to_owned(),
                        marker,
                        raw,
                    });
                }
                Outcome::Refused(code) => {
                    l.refused += 1;
                    *l.refusals.entry(format!("SendEmail: {code}")).or_default() += 1;
                    l.surprises
                        .push(format!("SendEmail from {from} refused: {code}"));
                }
                Outcome::CutOff(e) => {
                    l.cut_off += 1;
                    if !self.stopped() {
                        l.surprises
                            .push(format!("SendEmail from {from} failed before the kill: {e}"));
                    }
                    return;
                }
            }
        }
    }

    /// `sesame rotate` on `domains` in turn, on the server's data dir, until the kill (which
    /// kills a CLI still running too).
    pub async fn rotate(mut self, domains: Vec<String>, mut rng: Rng) {
        let mut i = 0;
        while !self.stopped() {
            let domain = domains[i % domains.len()].clone();
            i += 1;
            let started_ms = now_ms();
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
                .args(["rotate", &domain, "--data-dir"])
                .arg(&self.data_dir)
                .env_remove("SESAME_MASTER_KEY")
                .env_remove("SESAME_DATA_DIR")
                .env_remove("SESAME_DATABASE_URL")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let mut stderr = child.stderr.take().unwrap();
            let read = tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let (mut o, mut e) = (String::new(), String::new());
                let _ = stdout.read_to_string(&mut o).await;
                let _ = stderr.read_to_string(&mut e).await;
                (o, e)
            });
            // Now and then the CLI alone is killed mid-run: the server must carry on past a
            // writer that died holding the database.
            let own_kill = rng
                .chance(30)
                .then(|| std::time::Duration::from_millis(rng.below(250)));
            let own_kill = async move {
                match own_kill {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            let status = tokio::select! {
                s = child.wait() => Ok(s.unwrap()),
                _ = self.stop.changed() => Err(true),
                _ = own_kill => Err(false),
            };
            let status = match status {
                Ok(s) => s,
                Err(server_killed) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    let mut l = self.ledger.lock().unwrap();
                    l.cut_off += 1;
                    if server_killed {
                        return;
                    }
                    l.cli_killed += 1;
                    continue;
                }
            };
            let (out, err) = read.await.unwrap();
            {
                let mut l = self.ledger.lock().unwrap();
                if status.success() {
                    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                    l.acked += 1;
                    *l.ops.entry("sesame rotate".into()).or_default() += 1;
                    l.rotations.push(Rotation {
                        domain,
                        staged_token: v["StagedToken"].as_str().unwrap().to_owned(),
                        started_ms,
                    });
                } else {
                    l.refused += 1;
                    *l.refusals.entry("sesame rotate".into()).or_default() += 1;
                    let expected =
                        err.contains("already in progress") || err.contains("keeps a retired key");
                    if !expected {
                        l.surprises
                            .push(format!("sesame rotate {domain} failed: {status}: {err}"));
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100 + rng.below(300))).await;
        }
    }
}
