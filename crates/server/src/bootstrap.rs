//! First-start and every-start set-up of a data directory: the directory itself (0700), the
//! master key (from `SESAME_MASTER_KEY` or `<data-dir>/master.key`, created 0600), the store,
//! and the `default` account with its credentials.

use anyhow::{Context, bail};
use sesame_core::model::{AccountId, Timestamp};
use sesame_core::ports::{AccessKey, Account, Clock, Store};
use sesame_crypto::{MasterKey, Sealer, random};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The associated-data label of sealed secret access keys.
pub const ACCESS_KEY_PURPOSE: &str = "sesame/secret-access-key/v1";

/// The name of the account that the bootstrap variables and first start set up.
pub const DEFAULT_ACCOUNT: &str = "default";

/// Creates the data directory (mode 0700) if it is missing. One an operator made must belong
/// to the user Sesame runs as; if it lets group or others in, it is tightened to 0700 (it holds
/// the master key, the database with sealed keys, and credentials).
pub fn data_dir(path: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating data directory {}", path.display()))?;
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        bail!(
            "data directory {} belongs to uid {}, not to uid {me} that Sesame runs as",
            path.display(),
            meta.uid()
        );
    }
    tighten(path, &meta, 0o700)
}

/// Removes group and other permissions from `path` (mode `private`) if it has any.
fn tighten(path: &Path, meta: &fs::Metadata, private: u32) -> anyhow::Result<()> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "group or others could read this; now {private:o}"
        );
        fs::set_permissions(path, fs::Permissions::from_mode(private))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

/// The SQLite database and its `-wal` and `-shm` files, readable by the owner only. SQLite
/// creates the other two with the database's mode, so the database is made 0600 before
/// SQLite opens it; files left looser by an earlier version are tightened.
pub fn private_database(db: &Path) -> anyhow::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)
        .with_context(|| format!("creating {}", db.display()))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if let Ok(meta) = fs::metadata(&path) {
            tighten(&path, &meta, 0o600)?;
        }
    }
    Ok(())
}

/// Writes `contents` to a new file readable by the owner only; fails if it exists.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The master key: `SESAME_MASTER_KEY` if set, else the data dir's key file, made on first use.
pub fn master_key(data_dir: &Path) -> anyhow::Result<MasterKey> {
    if let Ok(text) = std::env::var("SESAME_MASTER_KEY") {
        return MasterKey::parse(&text).context("SESAME_MASTER_KEY");
    }
    let path = data_dir.join("master.key");
    match fs::read_to_string(&path) {
        Ok(text) => MasterKey::parse(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate()?;
            write_private(&path, &format!("{}\n", key.to_base64()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Shortest admin token accepted from `--admin-token`.
const MIN_ADMIN_TOKEN: usize = 16;

/// The web console's admin token and where it is kept: `given` (`--admin-token`) if set, else
/// `<data-dir>/admin-token`, generated (256 random bits, mode 0600) on first use.
pub fn admin_token(
    given: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(String, Option<PathBuf>)> {
    if let Some(token) = given {
        let token = token.trim();
        if token.len() < MIN_ADMIN_TOKEN {
            bail!("--admin-token must be at least {MIN_ADMIN_TOKEN} characters");
        }
        return Ok((token.to_owned(), None));
    }
    let path = data_dir.join("admin-token");
    match fs::read_to_string(&path) {
        Ok(text) => {
            let meta = fs::metadata(&path)?;
            tighten(&path, &meta, 0o600)?;
            let token = text.trim().to_owned();
            if token.len() < MIN_ADMIN_TOKEN {
                bail!(
                    "{} holds no admin token; delete it to have one made",
                    path.display()
                );
            }
            Ok((token, Some(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = random::admin_token()?;
            write_private(&path, &format!("{token}\n"))?;
            Ok((token, Some(path)))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// What the bootstrap did, for the start-up lines.
pub struct Bootstrap {
    /// The default account.
    pub account: AccountId,
    /// Where freshly generated credentials were written, if they were.
    pub credentials_file: Option<PathBuf>,
}

/// Ensures the default account exists and has credentials: those of
/// `SESAME_ACCESS_KEY_ID`/`SESAME_SECRET_ACCESS_KEY` if set, else generated ones on first start.
pub fn default_account(
    store: &dyn Store,
    sealer: &Sealer,
    clock: &dyn Clock,
    data_dir: &Path,
) -> anyhow::Result<Bootstrap> {
    let now = clock.now();
    let account = match store.account_by_name(DEFAULT_ACCOUNT)? {
        Some(a) => a,
        None => {
            let a = Account {
                id: AccountId::parse(&random::account_id()?)?,
                name: DEFAULT_ACCOUNT.into(),
                created_at: now,
            };
            match store.insert_account(&a) {
                Ok(()) => a,
                // Nodes starting together on one fresh database race to create it: the
                // losers use the winner's.
                Err(e) => store.account_by_name(DEFAULT_ACCOUNT)?.ok_or(e)?,
            }
        }
    };
    let env_id = std::env::var("SESAME_ACCESS_KEY_ID").ok();
    let env_secret = std::env::var("SESAME_SECRET_ACCESS_KEY").ok();
    let mut credentials_file = None;
    match (env_id, env_secret) {
        (Some(id), Some(secret)) => {
            if id.is_empty() || secret.is_empty() {
                bail!("SESAME_ACCESS_KEY_ID and SESAME_SECRET_ACCESS_KEY must not be empty");
            }
            if let Some(existing) = store.access_key(&id)?
                && existing.account != account.id
            {
                bail!("access key {id} belongs to another account");
            }
            store.put_access_key(&new_key(&account.id, id, &secret, sealer, now)?)?;
        }
        (None, None) => {
            if store.access_keys_of(&account.id)?.is_empty() {
                let id = random::access_key_id()?;
                let secret = random::secret_access_key()?;
                let path = data_dir.join("credentials");
                // Write the file first: a key nobody can learn would be useless.
                let _ = fs::remove_file(&path);
                write_private(
                    &path,
                    &format!(
                        "[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
                    ),
                )?;
                store.put_access_key(&new_key(&account.id, id, &secret, sealer, now)?)?;
                credentials_file = Some(path);
            }
        }
        _ => bail!("set both SESAME_ACCESS_KEY_ID and SESAME_SECRET_ACCESS_KEY, or neither"),
    }
    Ok(Bootstrap {
        account: account.id,
        credentials_file,
    })
}

pub fn new_key(
    account: &AccountId,
    id: String,
    secret: &str,
    sealer: &Sealer,
    now: Timestamp,
) -> anyhow::Result<AccessKey> {
    Ok(AccessKey {
        id,
        account: account.clone(),
        sealed_secret: sealer.seal(ACCESS_KEY_PURPOSE, secret.as_bytes())?,
        enabled: true,
        created_at: now,
    })
}
