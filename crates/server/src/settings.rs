//! The config file and `sesame config print`. A TOML file (`--config FILE` or `SESAME_CONFIG`)
//! names `serve` options by their long names without the dashes (`api-addr = "…"`); its values
//! become the options' defaults before clap parses the command line, so clap's own order does
//! the rest: a flag beats its `SESAME_*` variable, which beats the file, which beats the
//! built-in default. A key that is not an option is an error naming it, so a typo never
//! passes for a setting.
//!
//! Hand-written because clap has no config-file layer and the crates that add one (figment,
//! config) would replace clap's precedence and its `SESAME_*` handling rather than feed it.

use crate::config::Cli;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Options that never appear in a file or in `config print`.
/// `sandbox` too: it is only ever asked for on the command line (`serve --sandbox`,
/// `sesame dev`), never by a file or the environment left from elsewhere.
const NOT_SETTINGS: &[&str] = &["config", "help", "version", "sandbox"];

/// Options whose values `config print` never shows.
const SECRETS: &[&str] = &["smtp_password", "admin_token"];

/// What the command line parsed to, with where each value came from.
pub struct Parsed {
    /// The typed command line.
    pub cli: Cli,
    /// The raw matches, for `config print`'s sources.
    pub matches: ArgMatches,
    /// The config file read, and the ids of the options it set.
    pub file: Option<(PathBuf, Vec<String>)>,
}

/// The config file named on the command line (`--config X`, `--config=X`) or by
/// `SESAME_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            break;
        }
        if s == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("SESAME_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Every settable option: (long name, id), top-level ones (`log-format`) and `serve`'s.
fn settings() -> Vec<(String, String, bool)> {
    let root = Cli::command();
    let mut out = Vec::new();
    for arg in root.get_arguments() {
        if let Some(long) = arg.get_long().filter(|l| !NOT_SETTINGS.contains(l)) {
            out.push((long.to_owned(), arg.get_id().to_string(), true));
        }
    }
    if let Some(serve) = root.find_subcommand("serve") {
        for arg in serve.get_arguments() {
            if let Some(long) = arg.get_long().filter(|l| !NOT_SETTINGS.contains(l)) {
                out.push((long.to_owned(), arg.get_id().to_string(), false));
            }
        }
    }
    out
}

/// The file's `(id, value, top-level)` triples, each value as clap would read it.
fn read_file(path: &Path) -> Result<Vec<(String, String, bool)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("the config file {} is not valid TOML: {e}", path.display()))?;
    let known = settings();
    let mut out = Vec::new();
    for (key, value) in table {
        let Some((_, id, top)) = known.iter().find(|(long, _, _)| *long == key) else {
            let mut names: Vec<&str> = known.iter().map(|(l, _, _)| l.as_str()).collect();
            names.sort_unstable();
            return Err(format!(
                "unknown key {key:?} in the config file {}; the keys are the options of `sesame serve` without their dashes: {}",
                path.display(),
                names.join(", ")
            ));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(format!(
                    "{key} in the config file {} must be a string, a number or a boolean, not {}",
                    path.display(),
                    other.type_str()
                ));
            }
        };
        out.push((id.clone(), text, *top));
    }
    Ok(out)
}

/// Parses the command line with the config file's values as defaults; exits with clap's
/// usage error (status 2) on a bad command line or file.
pub fn parse() -> Parsed {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut cmd = Cli::command();
    let mut file = None;
    if let Some(path) = config_path(&args) {
        let values = match read_file(&path) {
            Ok(v) => v,
            Err(e) => cmd.error(clap::error::ErrorKind::InvalidValue, e).exit(),
        };
        for (id, value, top) in &values {
            let (id, value) = (id.clone(), value.clone());
            cmd = if *top {
                cmd.mut_arg(id, |a| a.default_value(value))
            } else {
                let set =
                    |c: clap::Command| c.mut_arg(id.clone(), |a| a.default_value(value.clone()));
                cmd.mut_subcommand("serve", set)
                    .mut_subcommand("dev", set)
                    .mut_subcommand("config", |c| c.mut_subcommand("print", set))
            };
        }
        file = Some((path, values.into_iter().map(|(id, _, _)| id).collect()));
    }
    let matches = cmd.get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    Parsed { cli, matches, file }
}

/// A TOML value for an option's raw text: numbers and booleans bare, the rest a basic string.
fn toml_value(raw: &str) -> String {
    if raw == "true"
        || raw == "false"
        || (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) && raw.len() < 19)
    {
        return raw.to_owned();
    }
    let mut out = String::from("\"");
    for c in raw.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A database URL with its password, if any, replaced by `***`.
fn redact_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (userinfo, host) = rest.rsplit_once('@')?;
    let (user, _) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:***@{host}"))
}

/// `sesame config print`: the effective configuration as a config file. Secrets (and a
/// database URL's password) are commented out and redacted, so the output is a valid config
/// file that sets everything else exactly as now.
pub fn print(parsed: &Parsed) -> String {
    let Some(print) = parsed
        .matches
        .subcommand_matches("config")
        .and_then(|m| m.subcommand_matches("print"))
    else {
        return String::new();
    };
    let from_file = |id: &str| {
        parsed
            .file
            .as_ref()
            .filter(|(_, ids)| ids.iter().any(|i| i == id))
            .map(|(p, _)| format!("file {}", p.display()))
    };
    let root = Cli::command();
    let env_of = |id: &str| -> Option<String> {
        root.get_arguments()
            .chain(
                root.find_subcommand("serve")
                    .into_iter()
                    .flat_map(|s| s.get_arguments()),
            )
            .find(|a| a.get_id() == id)
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
    };
    let mut out = String::from(
        "# The configuration `sesame serve` would run with, as a config file for --config.\n\
         # After each value: where it came from (flag, env, file or default).\n",
    );
    if let Some((path, _)) = &parsed.file {
        out.push_str(&format!("# Config file: {}\n", path.display()));
    }
    for (long, id, top) in settings() {
        let m = if top { &parsed.matches } else { print };
        let source = match m.value_source(&id) {
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) => {
                format!("env {}", env_of(&id).unwrap_or_default())
            }
            Some(ValueSource::DefaultValue) => from_file(&id).unwrap_or_else(|| "default".into()),
            _ => {
                out.push_str(&format!("# {long} =  (unset)\n"));
                continue;
            }
        };
        let raw: Vec<String> = m
            .get_raw(&id)
            .into_iter()
            .flatten()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if raw.is_empty() {
            out.push_str(&format!("# {long} =  (unset)\n"));
            continue;
        }
        // A list option (`spf-ips`) loads back from its values joined by its delimiter.
        let joined = raw.join(",");
        let raw = &joined;
        if SECRETS.contains(&id.as_str()) {
            out.push_str(&format!(
                "# {long} = \"<redacted>\"  # {source}; set, not shown\n"
            ));
        } else if id == "database_url"
            && let Some(redacted) = redact_url(raw)
        {
            out.push_str(&format!(
                "# {long} = {}  # {source}; the password is not shown\n",
                toml_value(&redacted)
            ));
        } else {
            out.push_str(&format!("{long} = {}  # {source}\n", toml_value(raw)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_a_one_line_help_and_a_file_key() {
        let root = Cli::command();
        let serve = root.find_subcommand("serve").unwrap();
        for arg in serve.get_arguments().chain(root.get_arguments()) {
            let Some(long) = arg.get_long() else { continue };
            if NOT_SETTINGS.contains(&long) && long != "config" {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(!help.is_empty(), "--{long} has no help");
            assert!(
                !help.contains('\n'),
                "--{long}: its help is not one line: {help:?}"
            );
        }
        assert!(
            settings()
                .iter()
                .any(|(l, _, top)| l == "log-format" && *top)
        );
        assert!(!settings().iter().any(|(l, _, _)| l == "config"));
    }

    #[test]
    fn values_print_as_toml_and_passwords_do_not() {
        assert_eq!(toml_value("100"), "100");
        assert_eq!(toml_value("true"), "true");
        assert_eq!(toml_value("127.0.0.1:8325"), "\"127.0.0.1:8325\"");
        assert_eq!(toml_value("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            redact_url("postgres://u:pw-secret@db.internal/sesame").as_deref(),
            Some("postgres://u:***@db.internal/sesame")
        );
        assert_eq!(redact_url("postgres://u@db/sesame"), None);
        assert_eq!(redact_url("/var/lib/sesame/sesame.db"), None);
    }
}
