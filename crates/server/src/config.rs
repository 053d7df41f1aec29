//! Command-line, environment and config-file configuration. Every `serve` option can also be
//! given as `SESAME_<NAME>` (e.g. `SESAME_DATA_DIR`) and as `<name> = …` in the TOML file of
//! `--config` (see `settings`); a flag wins over the environment, which wins over the file.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Sesame: a self-hosted, SESv2-compatible service for sending identities and DKIM.
#[derive(Parser, Debug)]
#[command(name = "sesame", version)]
pub struct Cli {
    /// Log format on stderr: `text` for people, `json` for one object per line.
    #[arg(
        long,
        global = true,
        env = "SESAME_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `timestamp level target: message fields`.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the fields.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the API, the key-zone DNS responder and the verifier until SIGTERM or SIGINT.
    Serve(Box<ServeArgs>),
    /// A sandbox for development and CI: `serve --sandbox` on a throwaway data dir (unless
    /// `--data-dir` is given), printing the environment an AWS SDK needs. Identities verify
    /// through Sesame's own DNS; never for production.
    Dev(Box<ServeArgs>),
    /// Manage accounts (tenants). Works while a server runs on the same data.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the DNS records an identity needs, as zone-file lines (`--check`: and what the
    /// DNS shows for each right now).
    DnsRecords {
        #[command(flatten)]
        args: DnsRecordsArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// DKIM-sign a message from stdin with an identity's active key and write it to stdout,
    /// so another MTA can use Sesame as its signer.
    Sign {
        /// The account (name or id).
        #[arg(long, default_value = "default")]
        account: String,
        /// The signing identity: a domain, or an address (its domain's key signs).
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Rotate an identity's Easy DKIM key: a new key is published under a free token and
    /// signs once seen in DNS; the old one stays published for the retention.
    Rotate {
        /// The domain identity.
        identity: String,
        /// The account (name or id).
        #[arg(long, default_value = "default")]
        account: String,
        /// How long a replaced key stays published for mail in transit: a token whose key
        /// retired less than this ago is not reused (the same setting as `serve`'s).
        #[arg(long, env = "SESAME_KEY_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
        key_retention: Duration,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Attach a DNS publisher to a domain (the customer's primary server, RFC 2136 with TSIG):
    /// Sesame then adds the records the domain needs and removes those it no longer needs.
    DnsPublisher {
        #[command(subcommand)]
        command: DnsPublisherCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A key was compromised: stop signing with it now, publish its revocation (`p=` empty)
    /// in the key zone, and stage a replacement (Easy DKIM; a BYODKIM domain stops signing
    /// until a new key is uploaded). Works while a server runs on the same data.
    Revoke {
        /// The domain identity.
        identity: String,
        /// The token (selector) whose key is revoked; default: the signing key.
        #[arg(long)]
        token: Option<String>,
        /// The account (name or id).
        #[arg(long, default_value = "default")]
        account: String,
        /// Who revokes, for the audit trail; default `$SUDO_USER`, `$USER`, else `cli`.
        #[arg(long)]
        by: Option<String>,
        /// List the identity's revocations instead of revoking.
        #[arg(long)]
        history: bool,
        /// The key retention (`serve`'s): a replacement goes into a token whose key retired
        /// longer ago than this, or, when none has, the one retired longest ago.
        #[arg(long, env = "SESAME_KEY_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
        key_retention: Duration,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Apply pending database migrations and exit (`serve` applies them too).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage access keys. Works while a server runs on the same data.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show the configuration `serve` would run with.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `sesame config`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective `serve` configuration as a config file, each value with where it
    /// came from (flag, environment, file or default); secrets redacted.
    Print(Box<ServeArgs>),
}

/// `sesame dns-publisher`.
#[derive(Subcommand, Debug)]
pub enum DnsPublisherCommand {
    /// Attach (or replace) the publisher of a domain identity's records.
    Set {
        /// The domain identity (it may be created later).
        domain: String,
        /// The account (name or id).
        #[arg(long, default_value = "default")]
        account: String,
        /// The primary server that takes updates, `HOST:PORT`.
        #[arg(long, value_name = "HOST:PORT")]
        rfc2136: String,
        /// The zone the records go into (the domain or a parent of it).
        #[arg(long)]
        zone: String,
        /// The TSIG key's name, as the server knows it.
        #[arg(long)]
        tsig_name: String,
        /// The TSIG algorithm.
        #[arg(long, default_value = "hmac-sha256", value_parser = ["hmac-sha256"])]
        tsig_algorithm: String,
        /// A file with the TSIG secret: its base64 alone, or a BIND key file
        /// (`tsig-keygen` output). The secret is sealed in the store and never printed.
        #[arg(long)]
        tsig_secret_file: PathBuf,
        /// Also publish a BYODKIM domain's key record (it is the customer's key, so only when
        /// asked).
        #[arg(long)]
        byodkim: bool,
    },
    /// Show a domain's publisher: where it publishes, what it published, the last error.
    Show {
        /// The domain identity.
        domain: String,
        /// The account (name or id).
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// Detach a domain's publisher; what it published stays in the zone.
    Remove {
        /// The domain identity.
        domain: String,
        /// The account (name or id).
        #[arg(long, default_value = "default")]
        account: String,
    },
}

/// What a node does with mail whose signing key was revoked before a replacement signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RevokedKeyMail {
    /// Refuse it with MessageRejected naming the revocation.
    Refuse,
    /// Send it unsigned.
    Unsigned,
}

impl From<RevokedKeyMail> for sesame_core::sending::RevokedKeyMail {
    fn from(v: RevokedKeyMail) -> Self {
        match v {
            RevokedKeyMail::Refuse => sesame_core::sending::RevokedKeyMail::Refuse,
            RevokedKeyMail::Unsigned => sesame_core::sending::RevokedKeyMail::Unsigned,
        }
    }
}

/// `sesame dns-records`.
#[derive(Args, Debug)]
pub struct DnsRecordsArgs {
    /// The identity (a domain, or an address: its domain's records are printed).
    pub identity: String,
    /// The account that owns the identity (name or id).
    #[arg(long, default_value = "default")]
    pub account: String,
    /// Also look the records up now and say, per record, what the verifier sees.
    #[arg(long)]
    pub check: bool,
    /// DNS resolver for `--check` (`IP[:PORT]`); default: the system's resolver.
    #[arg(long, env = "SESAME_RESOLVER")]
    pub resolver: Option<String>,
    /// The key zone the server publishes Easy DKIM keys under (as given to `serve`).
    #[arg(long, env = "SESAME_DKIM_ZONE", default_value = DEFAULT_DKIM_ZONE)]
    pub dkim_zone: String,
    #[command(flatten)]
    pub mail_from: MailFromArgs,
}

/// Where custom MAIL FROM domains' records point (`serve`'s, and `dns-records`' to print them).
#[derive(Args, Debug, Clone)]
pub struct MailFromArgs {
    /// The host a custom MAIL FROM domain's MX record must name: where the operator receives
    /// bounces (SES's `feedback-smtp.<region>.amazonses.com`); default
    /// `feedback-smtp.<dkim-zone>`.
    #[arg(long, env = "SESAME_MAIL_FROM_MX")]
    pub mail_from_mx: Option<String>,
    /// The domain whose SPF record lists Sesame's sending addresses; customers publish
    /// `v=spf1 include:<spf-domain> ~all` (as `include:amazonses.com`); default `spf.<dkim-zone>`.
    #[arg(long, env = "SESAME_SPF_DOMAIN")]
    pub spf_domain: Option<String>,
}

fn host_name(flag: &str, value: &str) -> anyhow::Result<String> {
    let d = sesame_core::model::DomainName::parse(value)
        .map_err(|_| anyhow::anyhow!("--{flag} {value:?} is not a valid host name"))?;
    Ok(d.as_str().to_owned())
}

impl MailFromArgs {
    /// The hosts, defaulted under `zone` (already normalised).
    pub fn hosts(&self, zone: &str) -> anyhow::Result<sesame_core::verification::MailFromHosts> {
        let defaults = sesame_core::verification::MailFromHosts::under(zone);
        Ok(sesame_core::verification::MailFromHosts {
            mx: match &self.mail_from_mx {
                Some(h) => host_name("mail-from-mx", h)?,
                None => defaults.mx,
            },
            spf_domain: match &self.spf_domain {
                Some(h) => host_name("spf-domain", h)?,
                None => defaults.spf_domain,
            },
        })
    }
}

/// The SPF record the key zone publishes at the SPF domain for `ips`.
pub fn spf_value(ips: &[String]) -> anyhow::Result<String> {
    let mut terms = vec!["v=spf1".to_owned()];
    for ip in ips.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (addr, len) = match ip.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (ip, None),
        };
        let parsed: std::net::IpAddr = addr
            .parse()
            .map_err(|_| anyhow::anyhow!("--spf-ips: {ip:?} is not an IP address or network"))?;
        let (kind, max) = if parsed.is_ipv4() {
            ("ip4", 32)
        } else {
            ("ip6", 128)
        };
        let suffix = match len {
            None => String::new(),
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => format!("/{n}"),
                _ => anyhow::bail!("--spf-ips: {ip:?} has a bad prefix length"),
            },
        };
        terms.push(format!("{kind}:{parsed}{suffix}"));
    }
    terms.push(if terms.len() == 1 { "?all" } else { "-all" }.to_owned());
    Ok(terms.join(" "))
}

/// `--public-url` checked (`http` or `https`, a host, no query or fragment) and without a
/// trailing `/`, or `http://<api>` when none is given.
pub fn public_url(given: Option<&str>, api: SocketAddr) -> anyhow::Result<String> {
    let Some(url) = given else {
        return Ok(format!("http://{api}"));
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !url.contains(['?', '#'])
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        anyhow::bail!(
            "--public-url {url:?} must be an http:// or https:// URL with a host, and no query or fragment"
        );
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl ServeArgs {
    /// The sender of Sesame's own verification mail, defaulted in the envelope domain.
    pub fn verification_from(
        &self,
        envelope: &sesame_core::model::DomainName,
    ) -> anyhow::Result<sesame_core::model::Mailbox> {
        let text = match &self.verification_from {
            Some(f) => f.clone(),
            None => format!("no-reply@{}", envelope.as_str()),
        };
        sesame_core::model::Mailbox::parse(&text).map_err(|_| {
            anyhow::anyhow!("--verification-from {text:?} is not a valid email address")
        })
    }

    /// The default envelope domain, defaulted under `zone`.
    pub fn envelope_domain(&self, zone: &str) -> anyhow::Result<sesame_core::model::DomainName> {
        let text = match &self.default_mail_from_domain {
            Some(d) => d.clone(),
            None => format!("mail.{zone}"),
        };
        sesame_core::model::DomainName::parse(&text).map_err(|_| {
            anyhow::anyhow!("--default-mail-from-domain {text:?} is not a valid domain name")
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create an account with a first access key; prints {"AccountId","AccessKeyId","SecretAccessKey"}.
    Create {
        /// A unique name: 1 to 64 letters, digits, '.', '_' or '-'.
        name: String,
    },
    /// List accounts as JSON.
    List,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create another access key for an account (by name or id); prints it as JSON.
    Create {
        /// The account's name or id.
        account: String,
    },
    /// Disable an access key: requests signed with it fail from now on.
    Disable {
        /// The access key id.
        access_key_id: String,
    },
    /// List access keys (never their secrets) as JSON.
    List,
}

/// Where the data lives; shared by `serve` and the management commands.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory for the SQLite database, the master key and generated credentials.
    #[arg(
        long,
        env = "SESAME_DATA_DIR",
        default_value = "./sesame-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Database URL; default: the SQLite file `<data-dir>/sesame.db`.
    #[arg(long, env = "SESAME_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

/// The default zone for Easy DKIM public keys. `.internal` is reserved for private use
/// (ICANN, 2024), so the default can never collide with a real zone; production deployments
/// set `--dkim-zone` to a zone delegated to Sesame's DNS responder.
pub const DEFAULT_DKIM_ZONE: &str = "dkim.sesame.internal";

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// TOML file of `serve` options (`api-addr = "127.0.0.1:8325"`); flags and `SESAME_*` win over it.
    #[arg(long, env = "SESAME_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Run as a sandbox (what `sesame dev` does): the DNS listener also serves every identity's records and the verifier asks it; never for production.
    #[arg(long)]
    pub sandbox: bool,
    /// How long a domain may stay unverified before FAILED, and the grace after SUCCESS (SES: 72 hours; shorter only with --sandbox).
    #[arg(long, env = "SESAME_VERIFICATION_WINDOW", default_value = "72h", value_parser = humantime::parse_duration)]
    pub verification_window: Duration,
    /// Address of the SESv2 HTTP API (port 0 picks a free port).
    #[arg(long, env = "SESAME_API_ADDR", default_value = "127.0.0.1:8325")]
    pub api_addr: SocketAddr,
    /// Address of the admin listener: `/metrics`, `/health/live`, `/health/ready` and the web
    /// console under `/console/` (port 0 picks a free port).
    #[arg(long, env = "SESAME_ADMIN_ADDR", default_value = "127.0.0.1:8326")]
    pub admin_addr: SocketAddr,
    /// The web console's sign-in token; default: generated once into `<data-dir>/admin-token`.
    #[arg(long, env = "SESAME_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Address of the key-zone DNS responder, UDP and TCP (port 0 picks a free port).
    #[arg(long, env = "SESAME_DNS_ADDR", default_value = "127.0.0.1:5353")]
    pub dns_addr: SocketAddr,
    /// Zone under which Easy DKIM public keys are published (`<token>.<zone>`).
    #[arg(long, env = "SESAME_DKIM_ZONE", default_value = DEFAULT_DKIM_ZONE)]
    pub dkim_zone: String,
    /// DNS resolver the verifier asks (`IP[:PORT]`); default: the system's resolver.
    #[arg(long, env = "SESAME_RESOLVER")]
    pub resolver: Option<String>,
    #[command(flatten)]
    pub mail_from: MailFromArgs,
    /// The addresses Sesame's mail leaves from (its relay's), comma-separated, each an IPv4 or
    /// IPv6 address or network (`192.0.2.10,2001:db8::/64`): the key zone publishes them as
    /// `v=spf1 ip4:… -all` at the SPF domain. None given: `v=spf1 ?all` (no claim either way).
    #[arg(long, env = "SESAME_SPF_IPS", value_delimiter = ',')]
    pub spf_ips: Vec<String>,
    /// The envelope domain of mail without a verified custom MAIL FROM domain (SES's
    /// `amazonses.com`); default `mail.<dkim-zone>`, which the key zone serves an MX and an SPF
    /// record for.
    #[arg(long, env = "SESAME_DEFAULT_MAIL_FROM_DOMAIN")]
    pub default_mail_from_domain: Option<String>,
    /// The base URL people's browsers reach the API listener at (`https://sesame.example.com`;
    /// a path prefix only where a proxy strips it): verification links are
    /// `<public-url>/verify/<token>`; default `http://<api-addr>` as bound.
    #[arg(long, env = "SESAME_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The sender of Sesame's own verification mail (SES's `no-reply-aws@amazon.com`); signed
    /// when its domain is a verified identity of the default account; default
    /// `no-reply@<default-mail-from-domain>`.
    #[arg(long, env = "SESAME_VERIFICATION_FROM")]
    pub verification_from: Option<String>,
    /// How long a verification link works (SES: 24 h; shorter only for tests; at most 7d).
    #[arg(long, env = "SESAME_VERIFICATION_LINK_LIFETIME", default_value = "24h", value_parser = humantime::parse_duration)]
    pub verification_link_lifetime: Duration,
    /// Mail from a domain whose signing key was revoked (`sesame revoke`) before its
    /// replacement signs: `refuse` (MessageRejected) or `unsigned`.
    #[arg(
        long,
        env = "SESAME_REVOKED_KEY_MAIL",
        value_enum,
        default_value = "refuse"
    )]
    pub revoked_key_mail: RevokedKeyMail,
    /// How often the DNS publishers (`sesame dns-publisher`) are looked at.
    #[arg(long, env = "SESAME_PUBLISH_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub publish_interval: Duration,
    /// First step of the verifier's re-check backoff (e.g. `60s`, `5m`).
    #[arg(long, env = "SESAME_VERIFY_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub verify_interval: Duration,
    /// How long a node's claim on a verification lasts; a node that dies mid-check has its
    /// claims taken over by another after this.
    #[arg(long, env = "SESAME_VERIFY_LEASE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub verify_lease: Duration,
    /// Directory that receives signed messages (default `<data-dir>/outbox`).
    #[arg(long, env = "SESAME_OUTBOX")]
    pub outbox: Option<PathBuf>,
    /// The AWS region this endpoint serves (in ARNs and SigV4 scopes).
    #[arg(long, env = "SESAME_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Most identities per account (SES's default quota is 10,000 per region).
    #[arg(long, env = "SESAME_MAX_IDENTITIES", default_value_t = 10_000)]
    pub max_identities: u64,
    /// Rotate each Easy DKIM signing key when it is this old (e.g. `90d`); default: only on
    /// request (`sesame rotate`).
    #[arg(long, env = "SESAME_ROTATE_EVERY", value_parser = humantime::parse_duration)]
    pub rotate_every: Option<Duration>,
    /// How long a new key is published before it may sign (covers DNS caches).
    #[arg(long, env = "SESAME_ROTATION_DELAY", default_value = "15m", value_parser = humantime::parse_duration)]
    pub rotation_delay: Duration,
    /// How long a replaced key stays published for mail in transit.
    #[arg(long, env = "SESAME_KEY_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub key_retention: Duration,
    /// Relay signed mail to this SMTP server (`host:port`) instead of writing the outbox.
    #[arg(long, env = "SESAME_SMTP_RELAY")]
    pub smtp_relay: Option<String>,
    /// TLS to the relay: none, opportunistic (STARTTLS if offered), required (STARTTLS or
    /// fail), or wrapper (SMTPS).
    #[arg(long, env = "SESAME_SMTP_TLS", default_value = "opportunistic")]
    pub smtp_tls: sesame_mail::relay::RelayTls,
    /// User name for SMTP AUTH at the relay.
    #[arg(long, env = "SESAME_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// Password for SMTP AUTH (prefer the environment variable to the flag).
    #[arg(long, env = "SESAME_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Connections kept open to the relay, each with a thread sending on it.
    #[arg(long, env = "SESAME_SMTP_CONNECTIONS", default_value_t = 4)]
    pub smtp_connections: u32,
    /// Attempts per message before it is reported in `<data-dir>/failed/` (a 5xx reply is
    /// never retried).
    #[arg(long, env = "SESAME_SMTP_ATTEMPTS", default_value_t = 8)]
    pub smtp_attempts: u32,
    /// The wait before the second attempt; each later one doubles, up to 5 minutes.
    #[arg(long, env = "SESAME_SMTP_RETRY_DELAY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub smtp_retry_delay: Duration,
    /// Sustained API requests per second per account (0: unlimited). SES allows 1/s; the
    /// default leaves room for Terraform's bursts of reads.
    #[arg(long, env = "SESAME_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,
    /// Requests an account may burst above the sustained rate.
    #[arg(long, env = "SESAME_RATE_BURST", default_value_t = 200)]
    pub rate_burst: u32,
    /// RSA-2048 Easy DKIM keys kept ready, generated in the background so creating an
    /// identity does not wait for key generation (0: generate on request).
    #[arg(long, env = "SESAME_KEY_POOL_2048", default_value_t = 24)]
    pub key_pool_2048: usize,
    /// RSA-1024 Easy DKIM keys kept ready (0: generate on request).
    #[arg(long, env = "SESAME_KEY_POOL_1024", default_value_t = 6)]
    pub key_pool_1024: usize,
    /// How long an API client has to send a request's headers, from its first byte (or from
    /// connecting).
    #[arg(long, env = "SESAME_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// How long a request body may take to arrive once the headers are in (408 after it).
    #[arg(long, env = "SESAME_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
    /// How long a keep-alive API connection may sit idle between requests.
    #[arg(long, env = "SESAME_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// How often the key zone asks the store whether keys changed; a new key is served
    /// within this (plus a rebuild), and no key signs before this node's zone serves it.
    #[arg(long, env = "SESAME_KEY_ZONE_POLL", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub key_zone_poll: Duration,
    /// Key-zone UDP answers per second per client prefix (IPv4 /24, IPv6 /56) before
    /// response-rate limiting starts (0: off).
    #[arg(long, env = "SESAME_DNS_RRL", default_value_t = 50)]
    pub dns_rrl: u32,
    /// Over the rate, every N-th answer goes out empty with TC set (the client retries over
    /// TCP) and the others are dropped (0: drop all).
    #[arg(long, env = "SESAME_DNS_RRL_SLIP", default_value_t = 2)]
    pub dns_rrl_slip: u32,
    /// Rate-limit loopback clients too (local tools and benchmarks are exempt by default).
    #[arg(long, env = "SESAME_DNS_RRL_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set)]
    pub dns_rrl_loopback: bool,
    /// Most open API connections; at the cap a new one displaces the stalest connection that
    /// has no request in progress. Lowered to fit the process's descriptor limit.
    #[arg(long, env = "SESAME_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
}

impl ServeArgs {
    /// The outbox directory, defaulted under the data dir.
    pub fn outbox_dir(&self) -> PathBuf {
        self.outbox
            .clone()
            .unwrap_or_else(|| self.store.data_dir.join("outbox"))
    }
}

#[cfg(test)]
mod public_url_tests {
    use super::public_url;

    #[test]
    fn the_public_url_is_checked_and_defaults_to_the_api_address() {
        let api = "127.0.0.1:4321".parse().unwrap();
        assert_eq!(public_url(None, api).unwrap(), "http://127.0.0.1:4321");
        for (given, want) in [
            ("https://sesame.example.com/", "https://sesame.example.com"),
            ("http://10.0.0.1:8325", "http://10.0.0.1:8325"),
            ("https://example.com/sesame/", "https://example.com/sesame"),
        ] {
            assert_eq!(public_url(Some(given), api).unwrap(), want);
        }
        for bad in [
            "sesame.example.com",
            "ftp://x",
            "https://",
            "https:///path",
            "https://x/?a=1",
            "https://x/#f",
            "https://x y",
        ] {
            assert!(public_url(Some(bad), api).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod spf_tests {
    use super::spf_value;

    #[test]
    fn the_spf_record_lists_each_address_or_network_and_refuses_what_is_neither() {
        let ips = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(spf_value(&[]).unwrap(), "v=spf1 ?all");
        assert_eq!(
            spf_value(&ips(&["192.0.2.10", " 10.0.0.0/8", "2001:db8::/64"])).unwrap(),
            "v=spf1 ip4:192.0.2.10 ip4:10.0.0.0/8 ip6:2001:db8::/64 -all"
        );
        for bad in [
            "mail.example.com",
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.1/x",
        ] {
            assert!(spf_value(&ips(&[bad])).is_err(), "{bad}");
        }
    }
}
