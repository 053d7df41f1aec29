//! The config file: the same option set in the file, the environment and on the command line
//! takes the flag's value, then the environment's, then the file's, then the default, as
//! `sesame config print` reports with each value's source; a real server takes its addresses
//! and its rate limit from the file; an unknown key is an error naming it; the example in
//! `contrib/` is a valid file; `config print` never shows a secret and its output is itself a
//! config file; `--log-format json` writes one JSON object per line; completions print.

use crate::{DEADLINE, Proc};
use std::path::Path;
use std::process::{Command, Stdio};

/// `sesame <args>` run to its end: (success, stdout, stderr), with no `SESAME_*` from the
/// test's environment but `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesame"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SESAME_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The line `config print` gives for `key`.
fn printed<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{out}"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sesame.toml",
        "rate-limit = 11\napi-addr = \"127.0.0.1:9011\"\nverify-interval = \"5m\"\n",
    );
    let env = [
        ("SESAME_RATE_LIMIT", "12"),
        ("SESAME_API_ADDR", "127.0.0.1:9012"),
    ];
    let flags = ["--rate-limit", "13", "--api-addr", "127.0.0.1:9013"];
    let print = |with_file: bool, env: &[(&str, &str)], flags: &[&str]| {
        let mut args = vec!["config", "print"];
        if with_file {
            args.extend(["--config", file.as_str()]);
        }
        args.extend_from_slice(flags);
        let (ok, out, err) = run(&args, env);
        assert!(ok, "{err}");
        out
    };
    let all = print(true, &env, &flags);
    assert_eq!(printed(&all, "rate-limit"), "rate-limit = 13  # flag");
    assert_eq!(
        printed(&all, "api-addr"),
        "api-addr = \"127.0.0.1:9013\"  # flag"
    );
    let no_flag = print(true, &env, &[]);
    assert_eq!(
        printed(&no_flag, "rate-limit"),
        "rate-limit = 12  # env SESAME_RATE_LIMIT"
    );
    assert_eq!(
        printed(&no_flag, "api-addr"),
        "api-addr = \"127.0.0.1:9012\"  # env SESAME_API_ADDR"
    );
    let file_only = print(true, &[], &[]);
    assert_eq!(
        printed(&file_only, "rate-limit"),
        format!("rate-limit = 11  # file {file}")
    );
    assert_eq!(
        printed(&file_only, "verify-interval"),
        format!("verify-interval = \"5m\"  # file {file}")
    );
    let none = print(false, &[], &[]);
    assert_eq!(printed(&none, "rate-limit"), "rate-limit = 100  # default");
    assert_eq!(
        printed(&none, "api-addr"),
        "api-addr = \"127.0.0.1:8325\"  # default"
    );
    // SESAME_CONFIG names the file too.
    let by_env = print(false, &[("SESAME_CONFIG", file.as_str())], &[]);
    assert_eq!(
        printed(&by_env, "rate-limit"),
        format!("rate-limit = 11  # file {file}")
    );
}

/// The file reaches a real server: it listens where the file says and throttles at the
/// file's rate.
#[tokio::test]
async fn a_server_runs_on_the_files_settings() {
    let dns = crate::fakedns::FakeDns::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sesame.toml",
        "api-addr = \"127.0.0.1:0\"\ndns-addr = \"127.0.0.1:0\"\nrate-limit = 1\nrate-burst = 2\n",
    );
    let data = dir.path().join("data");
    let mut server = Proc::serve(&data, &["--config", &file], &[], dns.addr);
    let (api, _) = server.listening();
    assert_ne!(api.port(), 8325, "the file's port 0, not the default");
    let c = crate::harness::client_without_retries(api);
    let mut throttled = false;
    for _ in 0..6 {
        let r = c.list_email_identities().send().await;
        if let Err(e) = r {
            let status = e.raw_response().map(|r| r.status().as_u16());
            assert_eq!(status, Some(429), "{e:?}");
            throttled = true;
            break;
        }
    }
    assert!(throttled, "rate-limit = 1 from the file was not applied");
}

#[test]
fn an_unknown_key_or_a_bad_value_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let typo = write(dir.path(), "typo.toml", "api-adr = \"127.0.0.1:0\"\n");
    for args in [
        vec!["serve", "--config", typo.as_str()],
        vec!["config", "print", "--config", typo.as_str()],
    ] {
        let (ok, out, err) = run(&args, &[]);
        assert!(!ok, "{out}");
        assert!(err.contains("unknown key \"api-adr\""), "{err}");
        assert!(err.contains(&typo), "the file is named: {err}");
        assert!(!out.contains("listening"), "{out}");
    }
    let nested = write(dir.path(), "nested.toml", "[serve]\napi-addr = \"x\"\n");
    let (ok, _, err) = run(&["config", "print", "--config", &nested], &[]);
    assert!(!ok && err.contains("unknown key \"serve\""), "{err}");
    let array = write(dir.path(), "array.toml", "region = [\"a\"]\n");
    let (ok, _, err) = run(&["config", "print", "--config", &array], &[]);
    assert!(
        !ok && err.contains("region") && err.contains("array"),
        "{err}"
    );
    let broken = write(dir.path(), "broken.toml", "region = \n");
    let (ok, _, err) = run(&["config", "print", "--config", &broken], &[]);
    assert!(!ok && err.contains("not valid TOML"), "{err}");
    let (ok, _, err) = run(
        &["config", "print", "--config", "/nonexistent/sesame.toml"],
        &[],
    );
    assert!(!ok && err.contains("/nonexistent/sesame.toml"), "{err}");
    let bad = write(dir.path(), "bad.toml", "rate-limit = \"fast\"\n");
    let (ok, _, err) = run(&["config", "print", "--config", &bad], &[]);
    assert!(!ok && err.contains("fast"), "{err}");
}

#[test]
fn the_example_config_is_valid_and_print_round_trips_without_secrets() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/sesame.toml");
    let (ok, out, err) = run(&["config", "print", "--config", example], &[]);
    assert!(ok, "contrib/sesame.toml: {err}");
    assert!(out.contains("# file "), "{out}");

    let secrets = [
        ("SESAME_SMTP_PASSWORD", "hunter2-smtp-secret"),
        ("SESAME_ADMIN_TOKEN", "admin-token-secret-0123456789"),
        (
            "SESAME_DATABASE_URL",
            "postgres://sesame:pw-db-secret@db.internal/sesame",
        ),
    ];
    let (ok, first, err) = run(&["config", "print", "--region", "eu-west-1"], &secrets);
    assert!(ok, "{err}");
    for (_, s) in secrets {
        let shown = if s.starts_with("postgres") {
            "pw-db-secret"
        } else {
            s
        };
        assert!(!first.contains(shown), "{shown} shown:\n{first}");
        assert!(!err.contains(shown));
    }
    assert!(
        first.contains("postgres://sesame:***@db.internal/sesame"),
        "{first}"
    );
    assert!(printed(&first, "smtp-password").contains("<redacted>"));
    // The printed configuration is a config file that sets the same values.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "printed.toml", &first);
    let (ok, second, err) = run(&["config", "print", "--config", &file], &[]);
    assert!(ok, "the printed file does not load: {err}\n{first}");
    let values = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  #").next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(values(&first), values(&second));
    assert!(values(&second).contains(&"region = \"eu-west-1\"".to_owned()));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dns = crate::fakedns::FakeDns::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesame"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SESAME_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["serve", "--log-format", "json", "--data-dir"])
        .arg(dir.path())
        .args([
            "--api-addr",
            "127.0.0.1:0",
            "--dns-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .env("SESAME_ACCESS_KEY_ID", crate::harness::KEY_ID)
        .env("SESAME_SECRET_ACCESS_KEY", crate::harness::SECRET)
        .env("SESAME_RESOLVER", dns.addr.to_string())
        .env("SESAME_KEY_POOL_2048", "0")
        .env("SESAME_KEY_POOL_1024", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let deadline = std::time::Instant::now() + DEADLINE;
    let api: std::net::SocketAddr = loop {
        assert!(std::time::Instant::now() < deadline);
        let line = lines.next().unwrap().unwrap();
        if let Some(rest) = line.strip_prefix("listening api=") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // One API request, so there is a request line to read.
    let r = crate::harness::send(
        api,
        format!("GET /v2/email/identities HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        b"",
    );
    assert_eq!(r.status, 403);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let mut request_lines = 0;
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(v.get(key).is_some(), "no {key}: {line}");
        }
        if v["message"] == "request" {
            request_lines += 1;
            for key in [
                "request_id",
                "account",
                "operation",
                "status",
                "duration_ms",
            ] {
                assert!(
                    v.get(key).is_some(),
                    "the request line has no {key}: {line}"
                );
            }
            assert_eq!(v["status"], 403);
            assert_eq!(v["operation"], "-");
        }
        assert!(!line.contains(crate::harness::SECRET));
    }
    assert!(stderr.lines().count() >= 3, "{stderr}");
    assert_eq!(request_lines, 1, "{stderr}");
}

#[test]
fn completions_print_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, out, err) = run(&["completions", shell], &[]);
        assert!(ok, "{shell}: {err}");
        assert!(
            out.contains("sesame") && out.contains("api-addr"),
            "{shell}:\n{out}"
        );
    }
    let (ok, _, _) = run(&["completions", "tcsh"], &[]);
    assert!(!ok);
}
