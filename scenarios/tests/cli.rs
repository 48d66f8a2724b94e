//! The `conformance` binary as a user meets it: a broken scenario file is refused before anything starts,
//! with the file, the line and what was expected, as one message (no stack trace, even with
//! `RUST_BACKTRACE=1`, common in CI) and exit code 1.

use std::process::Command;

fn conformance_with(name: &str, scenario: &str) -> (i32, String) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, scenario).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .arg("--scenario")
        .arg(&file)
        .args(["--agent-cmd", "true", "--out"])
        .arg(dir.join(format!("out-{name}")))
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("conformance runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_broken_scenario_is_one_message_with_its_line_and_no_stack_trace() {
    let (code, stderr) = conformance_with(
        "broken",
        "name = \"x\"\n[[executions]]\nid = \"e-1\"\n[[steps]]\nat = \"0s\"\ndo = \"start-agent\"\n\
         [[steps]]\nat = \"1m\"\ndo = \"cp-faults\"\nkind = \"server_error\"\nrate = 0.5\n",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("broken.toml")
            && stderr.contains("line 10")
            && stderr.contains("`server_error`")
            && stderr.contains("`server-error`"),
        "{stderr}"
    );
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
}

#[test]
fn an_offset_past_what_the_clock_holds_is_refused_not_a_panic() {
    let (code, stderr) = conformance_with(
        "far",
        "name = \"x\"\n[[executions]]\nid = \"e-1\"\n[[steps]]\nat = \"+1e300:00:00\"\ndo = \"start-agent\"\n",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("line 5") && stderr.contains("+1e300:00:00"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn tier_selects_the_built_in_scenarios_of_one_tier() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["--list", "--tier", "artifacts"])
        .output()
        .expect("conformance --list runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(
        listed,
        [
            "build-with-artifacts",
            "credentials-expire",
            "kms-artifacts",
            "large-artifact",
            "missing-source"
        ],
        "{listed:?}"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["--list", "--tier", "builds"])
        .output()
        .expect("conformance runs");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("`builds` is not a tier: `apica`, `protocol` or `artifacts`"),
        "{err}"
    );
}
