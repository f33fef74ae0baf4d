//! Ogg Opus conformance checks with `opusinfo` (opus-tools).

use std::path::Path;
use std::process::Command;

/// Full `opusinfo` output (stdout then stderr) for `path`, with its exit status
/// appended as a last line when it is not success.
pub fn opusinfo_report(path: &Path) -> String {
    let out = Command::new("opusinfo")
        .arg(path)
        .output()
        .expect("opusinfo (opus-tools) must be installed");
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        report.push_str(&format!("opusinfo exited with {}\n", out.status));
    }
    report
}

/// The lines of the `opusinfo` report that indicate a problem: warnings (a
/// missing EOS, sequence gaps, holes in the data), errors, and a failing exit
/// status. Empty for a conformant file. Informational `Note:` lines are fine.
pub fn opusinfo_problems(path: &Path) -> Vec<String> {
    opusinfo_report(path)
        .lines()
        .map(str::trim)
        .filter(|line| is_problem(line))
        .map(str::to_owned)
        .collect()
}

fn is_problem(line: &str) -> bool {
    line.starts_with("WARNING")
        || line.starts_with("ERROR")
        || line.starts_with("opusinfo exited")
        || line.to_ascii_lowercase().contains("error")
}

/// Panics with the offending lines and the whole report unless `opusinfo`
/// finds `path` to be a clean Ogg Opus file.
pub fn assert_opusinfo_clean(path: &Path) {
    let problems = opusinfo_problems(path);
    assert!(
        problems.is_empty(),
        "opusinfo reports problems in {}:\n{}\n--- full report ---\n{}",
        path.display(),
        problems.join("\n"),
        opusinfo_report(path)
    );
}
