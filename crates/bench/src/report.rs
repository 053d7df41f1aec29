//! What a run prints: each scenario's tables as it goes, then one summary of every target
//! (result, ceiling, ratio, target, met), also written to `target/bench/latest.md`.

use std::sync::Mutex;

static TEXT: Mutex<String> = Mutex::new(String::new());
static TARGETS: Mutex<Vec<[String; 5]>> = Mutex::new(Vec::new());
static NOTES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Prints a line of the report (Markdown) and keeps it for the file.
#[allow(clippy::print_stdout)]
pub fn say(line: &str) {
    println!("{line}");
    if let Ok(mut t) = TEXT.lock() {
        t.push_str(line);
        t.push('\n');
    }
}

/// Records one target: `ratio` is result ÷ ceiling (or, for latencies, allowance ÷ result),
/// `target` the ratio the issue asks for.
pub fn target(name: &str, result: String, ceiling: String, ratio: f64, target: f64) {
    let met = if ratio >= target { "yes" } else { "**no**" };
    if let Ok(mut t) = TARGETS.lock() {
        t.push([
            name.to_owned(),
            result,
            ceiling,
            format!("{:.1} % (target ≥ {:.0} %)", ratio * 100.0, target * 100.0),
            met.to_owned(),
        ]);
    }
}

/// A figure reported beside the targets (a peer's rate, a memory reading).
pub fn note(name: &str, text: String) {
    if let Ok(mut n) = NOTES.lock() {
        n.push((name.to_owned(), text));
    }
}

/// Prints the summary and writes the whole report to `path`.
pub fn finish(path: &std::path::Path) {
    say("## Summary\n");
    say("| scenario | result | ceiling | ratio | met |\n| --- | --- | --- | --- | --- |");
    let rows = TARGETS.lock().map(|t| t.clone()).unwrap_or_default();
    for r in rows {
        say(&format!("| {} |", r.join(" | ")));
    }
    let notes = NOTES.lock().map(|n| n.clone()).unwrap_or_default();
    if !notes.is_empty() {
        say("");
        for (name, text) in notes {
            say(&format!("- {name}: {text}"));
        }
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let text = TEXT.lock().map(|t| t.clone()).unwrap_or_default();
    let _ = std::fs::write(path, text);
}
