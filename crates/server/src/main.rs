//! The `sesame` binary: parses the command line, wires the store, the vault, the clock and the
//! mail system (outbox or SMTP relay) into the core's use cases, binds the listeners, prints the
//! `listening` line and serves until SIGTERM or SIGINT.

mod adapters;
mod background;
mod bootstrap;
mod cli;
mod config;
mod http;
mod publisher;
mod sandbox;
mod settings;

use adapters::{SealedPageTokens, StoreCredentials, SystemClock};
use anyhow::{Context, bail};
use config::{Command, ConfigCommand, LogFormat, ServeArgs, StoreArgs};
use sesame_api::ApiState;
use sesame_api::throttle::Throttle;
use sesame_core::addresses::LinkSettings;
use sesame_core::app::{Config, UseCases};
use sesame_core::keys::RotationPolicy;
use sesame_core::ports::{Clock, KeyZoneSource, Store};
use sesame_core::verification::VerifyPolicy;
use sesame_crypto::{OpenSslVault, PoolConfig, PooledVault, Sealer};
use sesame_dns::responder::SnapshotHandle;
use sesame_dns::verifier::Verifier;
use sesame_mail::Mail;
use sesame_store::SqliteStore;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// The log filter when `SESAME_LOG` is unset.
const DEFAULT_LOG: &str = "info";

/// Logs to stderr, as text or as one JSON object per line (`timestamp`, `level`, `target`,
/// `message` and the event's fields at the top level, for log shippers). A request thread
/// only formats its line: tracing-appender's thread writes them, every line queued while it
/// wrote the last batch in one `write` (one line per API request, written in place, was a
/// third of a GetEmailIdentity). Nothing is dropped (`lossy(false)`: a full queue makes the
/// logger wait); the returned guard flushes at exit.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("sesame-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    // hickory-server logs two info lines per DNS query: a query log anyone on the network can
    // flood, and (measured) a quarter of the key zone's throughput. Like NSD and Knot, the key
    // zone does not log queries unless asked.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SESAME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
    guard
}

fn main() -> anyhow::Result<()> {
    let parsed = settings::parse();
    let _log = init_logging(parsed.cli.log_format);
    if matches!(parsed.cli.command, Command::Config { .. }) {
        print_out(&settings::print(&parsed));
        return Ok(());
    }
    // `sesame dev` without `--data-dir` (flag or SESAME_DATA_DIR) runs on a throwaway one, and
    // without `--verify-interval` re-checks a PENDING identity after a second, not a minute.
    let dev_given = |id: &str| {
        parsed
            .matches
            .subcommand_matches("dev")
            .and_then(|m| m.value_source(id))
            .is_some_and(|s| s != clap::parser::ValueSource::DefaultValue)
    };
    let (dev_dir_given, dev_interval_given) = (dev_given("data_dir"), dev_given("verify_interval"));
    match parsed.cli.command {
        Command::Config {
            command: ConfigCommand::Print(_),
        } => Ok(()),
        Command::Completions { shell } => {
            let mut cmd = <config::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "sesame", &mut std::io::stdout());
            Ok(())
        }
        Command::Serve(args) => serve(*args),
        Command::Dev(mut args) => {
            args.sandbox = true;
            if !dev_interval_given {
                args.verify_interval = std::time::Duration::from_secs(1);
            }
            if dev_dir_given {
                return serve(*args);
            }
            let dir = std::env::temp_dir().join(format!(
                "sesame-dev-{}",
                sesame_crypto::random::admin_token()?
                    .get(..12)
                    .unwrap_or("data")
            ));
            args.store.data_dir = dir.clone();
            let served = serve(*args);
            let _ = std::fs::remove_dir_all(&dir);
            served
        }
        Command::Account { command, store } => {
            let opened = open(&store)?;
            cli::account(command, &opened, &SystemClock)
        }
        Command::DnsRecords { args, store } => {
            let opened = open(&store)?;
            cli::dns_records(args, &opened)
        }
        Command::Sign {
            account,
            identity,
            store,
        } => {
            let opened = open(&store)?;
            cli::sign(&account, &identity, &opened)
        }
        Command::Rotate {
            identity,
            account,
            key_retention,
            store,
        } => {
            let opened = open(&store)?;
            let rotation = RotationPolicy {
                retention_ms: millis(key_retention),
                ..RotationPolicy::default()
            };
            cli::rotate(&account, &identity, rotation, &opened)
        }
        Command::DnsPublisher { command, store } => {
            let opened = open(&store)?;
            cli::dns_publisher(command, &opened, &SystemClock)
        }
        Command::Revoke {
            identity,
            token,
            account,
            by,
            history,
            key_retention,
            store,
        } => {
            let opened = open(&store)?;
            if history {
                return cli::revocations(&account, &identity, &opened);
            }
            let rotation = RotationPolicy {
                retention_ms: millis(key_retention),
                ..RotationPolicy::default()
            };
            let by = by
                .or_else(|| std::env::var("SUDO_USER").ok())
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "cli".into());
            cli::revoke(
                &account,
                &identity,
                token.as_deref(),
                &by,
                rotation,
                &opened,
            )
        }
        Command::Migrate { store } => {
            // Opening a store applies its pending migrations (under an advisory lock on
            // PostgreSQL, so nodes starting together do not collide).
            open(&store)?;
            announce("migrations applied");
            Ok(())
        }
        Command::Key { command, store } => {
            let opened = open(&store)?;
            cli::key(command, &opened, &SystemClock)
        }
    }
}

/// The SQLite file named by `--database-url`, or the default one in the data dir.
fn sqlite_path(args: &StoreArgs) -> PathBuf {
    match args.database_url.as_deref() {
        None => args.data_dir.join("sesame.db"),
        Some(url) => PathBuf::from(
            url.strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url),
        ),
    }
}

fn is_postgres(url: Option<&str>) -> bool {
    url.is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// The data dir, the master key's sealer and the store, as `serve` and the CLI share them.
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Seals and opens secrets under the master key.
    pub sealer: Sealer,
    /// The database file.
    pub db: PathBuf,
}

fn open(args: &StoreArgs) -> anyhow::Result<Opened> {
    bootstrap::data_dir(&args.data_dir)?;
    let sealer = Sealer::new(bootstrap::master_key(&args.data_dir)?);
    if is_postgres(args.database_url.as_deref()) {
        let url = args.database_url.clone().unwrap_or_default();
        // The hot reads from memory, current by the database's snapshot (sesame_store::cached).
        let store: Arc<dyn Store> = Arc::new(sesame_store::Cached::new(
            sesame_store::PostgresStore::open(&url, None)
                .context("opening the PostgreSQL database")?,
        ));
        // Never print the URL: it may carry a password.
        return Ok(Opened {
            store,
            sealer,
            db: PathBuf::from("postgresql"),
        });
    }
    let db = sqlite_path(args);
    bootstrap::private_database(&db)?;
    // The hot reads from memory, current by SQLite's data_version (sesame_store::cached).
    let store: Arc<dyn Store> = Arc::new(sesame_store::Cached::new(
        SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?,
    ));
    Ok(Opened { store, sealer, db })
}

/// Writes a command's output to stdout.
#[allow(clippy::print_stdout)]
fn print_out(text: &str) {
    print!("{text}");
    let _ = std::io::stdout().flush();
}

/// Prints one start-up line on stdout, where the test harness and scripts look for it.
#[allow(clippy::print_stdout)]
fn announce(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !args.sandbox && args.verification_window != std::time::Duration::from_secs(72 * 3600) {
        bail!(
            "--verification-window is a sandbox setting (SES keeps looking for 72 hours); use it with `sesame dev` or `serve --sandbox`"
        );
    }
    let Opened { store, sealer, db } = open(&args.store)?;
    let outbox = args.outbox_dir();
    bootstrap::data_dir(&outbox)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let boot = bootstrap::default_account(
        store.as_ref(),
        &sealer,
        clock.as_ref(),
        &args.store.data_dir,
    )?;
    announce(&format!("default account={}", boot.account.as_str()));
    if let Some(path) = &boot.credentials_file {
        announce(&format!(
            "generated credentials for the default account in {} (AWS credentials-file format)",
            path.display()
        ));
    }
    let zone = args.dkim_zone.trim_end_matches('.').to_ascii_lowercase();
    let hosts = args.mail_from.hosts(&zone)?;
    let envelope_domain = args.envelope_domain(&zone)?;
    let zone = background::ZoneSpec {
        hosts: zone_hosts(&zone, &hosts, &envelope_domain, &args.spf_ips)?,
        zone,
    };
    let vault = Arc::new(OpenSslVault::new(sealer.clone()));
    // Easy DKIM keys for requests come from a pool refilled in the background; the CLI
    // commands use the plain vault.
    let pool = Arc::new(
        PooledVault::start(
            vault.clone(),
            PoolConfig {
                rsa2048: args.key_pool_2048,
                rsa1024: args.key_pool_1024,
                workers: PoolConfig::default_workers(),
            },
        )
        .context("starting the key pool's threads")?,
    );
    tracing::info!(
        rsa2048 = args.key_pool_2048,
        rsa1024 = args.key_pool_1024,
        workers = pool.workers(),
        "key pool: Easy DKIM keys kept ready"
    );
    let mail = mail(&args, &outbox)?;
    // Bound before the use cases are built: the verification links' default base is the
    // address it got (port 0 picks one).
    let api_std = std::net::TcpListener::bind(args.api_addr)
        .with_context(|| format!("binding the API to {}", args.api_addr))?;
    api_std.set_nonblocking(true)?;
    let bound = api_std.local_addr()?;
    if args.public_url.is_none() && bound.ip().is_unspecified() {
        tracing::warn!(%bound, "verification links will name {bound}, which no browser reaches: set --public-url");
    }
    let public_url = config::public_url(args.public_url.as_deref(), bound)?;
    if args.verification_link_lifetime.is_zero()
        || args.verification_link_lifetime > std::time::Duration::from_secs(7 * 24 * 3600)
    {
        bail!("--verification-link-lifetime must be longer than 0s and at most 7d");
    }
    let links = LinkSettings {
        public_url,
        from: args.verification_from(&envelope_domain)?,
        operator: Some(boot.account.clone()),
        lifetime_ms: millis(args.verification_link_lifetime),
        region: args.region.clone(),
    };
    let service = UseCases::new(
        store.clone(),
        pool.clone(),
        clock.clone(),
        Arc::new(mail),
        Config {
            max_identities: args.max_identities,
            dkim_zone: zone.zone.clone(),
            verify: VerifyPolicy {
                first_interval_ms: millis(args.verify_interval),
                lease_ms: millis(args.verify_lease),
                window_ms: millis(args.verification_window).max(1),
                ..VerifyPolicy::default()
            },
            rotation: RotationPolicy {
                activation_delay_ms: millis(args.rotation_delay),
                retention_ms: millis(args.key_retention),
                rotate_every_ms: args.rotate_every.map(millis),
            },
            mail_from: hosts.clone(),
            envelope_domain: envelope_domain.clone(),
            links,
            revoked_key_mail: args.revoked_key_mail.into(),
        },
    );
    let service = Arc::new(service);
    let metrics = Arc::new(sesame_metrics::Metrics::new(env!("CARGO_PKG_VERSION")));
    let (admin_token, token_file) =
        bootstrap::admin_token(args.admin_token.as_deref(), &args.store.data_dir)?;
    if let Some(path) = &token_file {
        // Where, never what: the token itself stays in the file.
        announce(&format!(
            "the web console's admin token is in {}",
            path.display()
        ));
    }
    let auth = sesame_admin::console::Auth::new(
        &admin_token,
        sesame_crypto::random::admin_token()?.into_bytes(),
        || sesame_crypto::random::admin_token().ok(),
    );
    drop(admin_token);
    let accounts: Arc<dyn sesame_core::ports::AccountStore> = store.clone();
    let zone_loaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let node = Arc::new(adapters::Node {
        store: store.clone(),
        zone_loaded: zone_loaded.clone(),
        pool: pool.clone(),
    });
    let state = Arc::new(ApiState {
        service: service.clone(),
        region: args.region.clone(),
        credentials: Arc::new(StoreCredentials::new(store.clone(), sealer.clone())),
        pages: Arc::new(SealedPageTokens(sealer.clone())),
        clock: clock.clone(),
        throttle: Throttle::new(args.rate_limit, args.rate_burst),
        auth_failures: sesame_api::throttle::SourceThrottle::new(
            sesame_api::throttle::AUTH_FAILURES_PER_SECOND,
            sesame_api::throttle::AUTH_FAILURES_BURST,
        ),
        body_timeout: args.body_timeout,
        signing_keys: Default::default(),
        // SQLite reads come from the page cache in microseconds; PostgreSQL's cross the network.
        inline_reads: !is_postgres(args.store.database_url.as_deref()),
        metrics: metrics.clone(),
        access_log: sesame_api::AccessLog::start(),
        request_scope: Some(|| Box::new(sesame_store::pin_thread())),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let resolver = args
        .resolver
        .as_deref()
        .map(background::resolver_addr)
        .transpose()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(api_std)?;
        let api = listener.local_addr()?;
        let admin_listener = tokio::net::TcpListener::bind(args.admin_addr)
            .await
            .with_context(|| format!("binding the admin listener to {}", args.admin_addr))?;
        let admin = admin_listener.local_addr()?;
        // One UDP socket per core (see bind_dns).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (udp, tcp) = background::bind_dns(args.dns_addr, cores)
            .await
            .with_context(|| format!("binding DNS to {}", args.dns_addr))?;
        let dns = tcp.local_addr()?;
        // The key zone reads only the published keys, never the rest of the store.
        let key_source: Arc<dyn KeyZoneSource> = store.clone();
        let sandbox = args
            .sandbox
            .then(|| Arc::new(sandbox::Sandbox::new(store.clone(), service.checks.clone())));
        let (generation, snapshot) =
            background::load_snapshot(key_source.clone(), zone.clone(), sandbox.clone()).await?;
        let snapshot = SnapshotHandle::new(snapshot);
        zone_loaded.store(true, std::sync::atomic::Ordering::Release);
        // The sandbox's verifier asks the sandbox's own DNS.
        let resolver = if sandbox.is_some() { Some(dns) } else { resolver };
        let verifier = Arc::new(
            Verifier::new(resolver, VERIFY_LOOKUP_TIMEOUT)
                .map_err(|e| anyhow::anyhow!(e))?
                .with_key_zone(snapshot.clone()),
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut background = tokio::task::JoinSet::new();
        background.spawn(background::follow_store(
            key_source,
            zone.clone(),
            snapshot.clone(),
            generation,
            args.key_zone_poll,
            sandbox.clone(),
            stopped.clone(),
        ));
        background.spawn(
            publisher::PublisherLoop {
                store: store.clone(),
                checks: service.checks.clone(),
                sealer: sealer.clone(),
                clock: clock.clone(),
                retention_ms: millis(args.key_retention),
                interval: args.publish_interval,
            }
            .run(stopped.clone()),
        );
        background.spawn(background::verify_loop(
            service.checks.clone(),
            verifier.clone(),
            metrics.clone(),
            sandbox.clone(),
            stopped.clone(),
        ));
        let rrl = sesame_dns::listener::RrlConfig {
            responses_per_second: args.dns_rrl,
            slip: args.dns_rrl_slip,
            loopback: args.dns_rrl_loopback,
        };
        let dns_task = tokio::spawn(background::serve_dns(
            udp,
            tcp,
            snapshot,
            rrl,
            metrics.clone(),
            stopped.clone(),
        ));
        let admin_state = Arc::new(sesame_admin::AdminState::new(
            service.clone(),
            accounts,
            node,
            metrics,
            verifier,
            auth,
        ));
        let mut admin_stop = stopped.clone();
        let admin_task = tokio::spawn(http::serve(
            admin_listener,
            sesame_admin::app(admin_state),
            http::Limits {
                header_timeout: args.header_timeout,
                idle_timeout: args.idle_timeout,
                max_connections: ADMIN_CONNECTIONS,
            },
            async move {
                let _ = admin_stop.wait_for(|stop| *stop).await;
            },
        ));
        announce(&format!("listening api={api} dns={dns} admin={admin}"));
        if sandbox.is_some() {
            let (id, secret) = sandbox::credentials(&args.store.data_dir)?;
            announce(&format!(
                "SANDBOX: identities verify through Sesame's own DNS at {dns} and mail stays in {}; nothing here is true of the real DNS. Not for production.",
                outbox.display()
            ));
            announce(&format!("export AWS_ENDPOINT_URL_SESV2=http://{api}"));
            announce(&format!("export AWS_ACCESS_KEY_ID={id}"));
            announce(&format!("export AWS_SECRET_ACCESS_KEY={secret}"));
            // boto3 and the AWS CLI read the first, the other SDKs the second.
            announce(&format!("export AWS_DEFAULT_REGION={}", args.region));
            announce(&format!("export AWS_REGION={}", args.region));
            announce(&format!("# sandbox DNS {dns}, data dir {}", args.store.data_dir.display()));
        }
        tracing::info!(%api, %dns, %admin, region = %args.region, zone = %zone.zone, db = %db.display(), outbox = %outbox.display(), resolver = ?resolver, "sesame started");
        let limits = http::Limits {
            header_timeout: args.header_timeout,
            idle_timeout: args.idle_timeout,
            max_connections: connection_cap(args.max_connections),
        };
        tracing::info!(?limits, "API connection limits");
        // The verification links' pages share the API listener: the browsers of the people
        // the mail went to reach it at --public-url.
        let mut app = sesame_admin::links::routes(service.addresses.clone());
        if let Some(sb) = &sandbox {
            let catcher = Arc::new(sandbox::Catcher {
                outbox: outbox.clone(),
                dns,
            });
            app = app.merge(sandbox::routes(sb.clone(), catcher));
        }
        let app = app.merge(sesame_api::app(state));
        http::serve(listener, app, limits, shutdown_signal()).await?;
        let _ = stop.send(true);
        pool.stop();
        while background.join_next().await.is_some() {}
        dns_task.await??;
        admin_task.await??;
        tracing::info!("sesame stopped");
        Ok(())
    })
}

/// Descriptors kept for everything but API connections: the database, DNS sockets, the
/// outbox, the relay.
const RESERVED_DESCRIPTORS: u64 = 128;

/// The API connection cap that fits the descriptor limit: the soft limit is raised to the hard
/// one first (as Go's runtime does), and the cap lowered if even that is too small.
fn connection_cap(wanted: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "could not raise the descriptor limit");
        }
        limit = getrlimit(Resource::Nofile);
    }
    let Some(current) = limit.current else {
        return wanted;
    };
    let fits =
        usize::try_from(current.saturating_sub(RESERVED_DESCRIPTORS).max(16)).unwrap_or(usize::MAX);
    if fits < wanted {
        tracing::warn!(
            wanted,
            cap = fits,
            descriptors = current,
            "--max-connections lowered to fit the descriptor limit"
        );
    }
    wanted.min(fits)
}

/// Open admin connections at most: probes, a scraper and a few people, never a crowd; the
/// API's own cap is separate, so a flood on one listener cannot starve the other.
const ADMIN_CONNECTIONS: usize = 64;

/// One try per DNS lookup; the verifier's backoff schedule is the retry.
const VERIFY_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The mail system; signed mail goes to the SMTP relay if one is configured, else to the
/// outbox directory.
/// The names of its own the key zone serves beside the keys: the SPF domain's record, and the
/// default MAIL FROM domain's MX and SPF record (so mail sent without a custom MAIL FROM domain
/// passes SPF, unaligned, as SES's `amazonses.com` envelope does). A name outside the zone is
/// the operator's own to publish.
fn zone_hosts(
    zone: &str,
    hosts: &sesame_core::verification::MailFromHosts,
    envelope: &sesame_core::model::DomainName,
    spf_ips: &[String],
) -> anyhow::Result<Vec<sesame_dns::responder::HostRecord>> {
    let inside = |name: &str| name.ends_with(&format!(".{zone}"));
    let mut out = Vec::new();
    if inside(&hosts.spf_domain) {
        out.push(sesame_dns::responder::HostRecord {
            name: hosts.spf_domain.clone(),
            txt: Some(config::spf_value(spf_ips)?),
            mx: None,
        });
    } else {
        tracing::info!(
            spf_domain = hosts.spf_domain,
            "the SPF domain is outside the key zone: publish its record yourself"
        );
    }
    if inside(envelope.as_str()) && envelope.as_str() != hosts.spf_domain {
        out.push(sesame_dns::responder::HostRecord {
            name: envelope.as_str().to_owned(),
            txt: Some(
                sesame_core::mail_from::spf_record(&hosts.spf_domain).replace("~all", "-all"),
            ),
            mx: Some((sesame_dns::records::MX_PREFERENCE, hosts.mx.clone())),
        });
    }
    Ok(out)
}

fn mail(args: &ServeArgs, outbox: &std::path::Path) -> anyhow::Result<Mail> {
    let Some(relay) = &args.smtp_relay else {
        // Each back end has its own spool: what one has accepted was delivered its way, and
        // a switch to the other must not deliver it again.
        let spool = args.store.data_dir.join("spool").join("outbox");
        let (spooled, replayed) = sesame_mail::spooled::SpooledOutbox::open(
            outbox,
            &spool,
            std::time::Duration::from_secs(1),
        )
        .with_context(|| {
            format!(
                "opening the outbox {} and its spool {}",
                outbox.display(),
                spool.display()
            )
        })?;
        if replayed > 0 {
            tracing::info!(replayed, "outbox: messages the spool held put back");
        }
        return Ok(Mail::new(spooled));
    };
    let (host, port) = relay
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .with_context(|| format!("--smtp-relay must be host:port, got {relay:?}"))?;
    let credentials = match (&args.smtp_username, &args.smtp_password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (None, None) => None,
        _ => bail!("give both --smtp-username and --smtp-password, or neither"),
    };
    if args.smtp_attempts == 0 || args.smtp_connections == 0 || args.smtp_connections > 64 {
        bail!("--smtp-attempts must be at least 1 and --smtp-connections 1 to 64");
    }
    let relay = sesame_mail::relay::SmtpRelay::new(
        host,
        port,
        args.smtp_tls,
        credentials,
        args.smtp_connections,
    )?;
    let spool = args.store.data_dir.join("spool").join("relay");
    let failed = args.store.data_dir.join("failed");
    let (relayed, requeued) = sesame_mail::relayed::SpooledRelay::open(
        relay,
        &spool,
        &failed,
        args.smtp_connections as usize,
        sesame_mail::relayed::RetryPolicy {
            attempts: args.smtp_attempts,
            first_delay: args.smtp_retry_delay,
            max_delay: std::time::Duration::from_secs(300),
        },
    )
    .with_context(|| format!("opening the relay's spool {}", spool.display()))?;
    if requeued > 0 {
        tracing::info!(requeued, "relay: messages the spool held queued again");
    }
    Ok(Mail::new(relayed))
}

/// Resolves on SIGTERM or SIGINT; in-flight requests then finish before the process exits.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
