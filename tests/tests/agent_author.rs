//! The `conformance` command line as an agent author meets it (issue: "the harness as agent authors meet
//! it"): a run that did not test a scenario's premise says so instead of passing; an agent that cannot start
//! or exits with work outstanding is named as the cause, not the protocol; the replay line it prints works
//! when pasted into bash; and the reference agent's timed wait, in rounds, takes every protocol-tier
//! scenario through its steps.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn agent() -> String {
    format!("'{}'", env!("CARGO_BIN_EXE_reference-agent"))
}

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("agent-author")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// What one `conformance` run left.
struct Ran {
    code: i32,
    stderr: String,
    reports: Vec<Value>,
    junit: String,
}

impl Ran {
    fn results(&self) -> Vec<(String, String)> {
        self.reports
            .iter()
            .map(|r| (text(&r["name"]), text(&r["result"])))
            .collect()
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn conformance(name: &str, args: &[&str]) -> Ran {
    let dir = out_dir(name);
    let out = Command::new(env!("CARGO_BIN_EXE_conformance-cli"))
        .args(args)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--json")
        .arg(dir.join("report.json"))
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .output()
        .expect("conformance runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let reports = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<Value>>(&t).ok())
        .unwrap_or_default();
    Ran {
        code: out.status.code().unwrap_or(-1),
        junit: std::fs::read_to_string(dir.join("junit.xml")).unwrap_or_default(),
        stderr: format!("{stderr}{}", String::from_utf8_lossy(&out.stdout)),
        reports,
    }
}

const TIMED_WAIT: &str = "Test/Custom/TimedWait/1";

/// The protocol-tier scenarios, as `--list` gives them.
fn protocol_scenarios() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_conformance-cli"))
        .args(["--list", "--action-type", TIMED_WAIT])
        .output()
        .expect("conformance --list runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn the_timed_wait_in_rounds_takes_every_protocol_scenario_through_its_steps() {
    let all = protocol_scenarios();
    assert!(all.len() >= 7, "{all:?}");
    // 300 rounds of the default 30 s continuation delay outlast the two-hour scenario. Under 30% throttled
    // polls each round costs the SDK's real backoff, so that scenario, which has no step and no premise of
    // length, runs 40 rounds.
    let mut args: Vec<String> = vec![
        "--agent-cmd".into(),
        agent(),
        "--action-type".into(),
        TIMED_WAIT.into(),
        "--config".into(),
        "Rounds=300".into(),
    ];
    for s in all.iter().filter(|s| *s != "throttled-polls") {
        args.extend(["--scenario".into(), s.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = conformance("rounds-300", &args);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.reports.len(), all.len() - 1, "{}", ran.stderr);
    for (name, result) in ran.results() {
        assert_eq!(result, "pass", "{name}: {}", ran.stderr);
    }
    let ran = conformance(
        "rounds-throttled",
        &[
            "--agent-cmd",
            &agent(),
            "--action-type",
            TIMED_WAIT,
            "--config",
            "Rounds=40",
            "--scenario",
            "throttled-polls",
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.results(),
        [("throttled-polls".to_string(), "pass".to_string())]
    );
}

#[test]
fn a_run_that_never_reached_its_premise_is_inconclusive_not_passed() {
    let args = [
        "--agent-cmd",
        &agent(),
        "--action-type",
        TIMED_WAIT,
        "--config",
        "Rounds=5",
        "--scenario",
        "redeploy-mid-job",
        "--scenario",
        "two-hour-test",
    ];
    let ran = conformance("inconclusive", &args);
    assert_eq!(ran.code, 1, "inconclusive exits 1: {}", ran.stderr);
    // Five rounds of 30 s: the work is over long before the redeploy at 40 minutes.
    assert!(
        ran.stderr.contains(
            "inconclusive: the agent finished e-1 at +00:02:30, before the redeploy at +00:40:00, which never ran"
        ),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("e-1 ran for 2m 30s of simulated time")
            && ran.stderr.contains("at least 2h ([premise] min_duration)"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("0 passed, 0 failed, 2 inconclusive"),
        "{}",
        ran.stderr
    );
    for r in &ran.reports {
        assert_eq!(text(&r["result"]), "inconclusive", "{r}");
        assert_eq!(r["passed"], Value::Bool(false), "{r}");
    }
    assert_eq!(
        ran.junit.matches("<skipped").count(),
        2,
        "JUnit marks them skipped: {}",
        ran.junit
    );
    assert!(
        ran.junit
            .contains("inconclusive: the agent finished e-1 at +00:02:30"),
        "{}",
        ran.junit
    );

    let mut allowed: Vec<&str> = args.to_vec();
    allowed.push("--allow-inconclusive");
    let ran = conformance("inconclusive-allowed", &allowed);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// The run stopped at once and blamed the agent: no timeouts, no missing load tests.
fn blames_the_agent(ran: &Ran, rule: &str, said: &[&str]) {
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(ran.stderr.contains(rule), "{}", ran.stderr);
    for s in said {
        assert!(ran.stderr.contains(s), "`{s}` in:\n{}", ran.stderr);
    }
    for noise in ["CP-TIMEOUT", "load test", "JobTimedOut"] {
        assert!(
            !ran.stderr.contains(noise),
            "`{noise}` is not the cause:\n{}",
            ran.stderr
        );
    }
    assert!(ran.stderr.contains("agent.log: "), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("the agent died in a scenario"),
        "{}",
        ran.stderr
    );
    let report = &ran.reports[0];
    assert_eq!(text(&report["result"]), "fail");
    let checks = report["verdict"]["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 1, "one check, about the agent: {checks:?}");
}

#[test]
fn an_agent_that_does_not_start_is_named_as_the_cause() {
    let ran = conformance(
        "no-such-agent",
        &["--agent-cmd", "./no-such-agent", "--scenario", "short-test"],
    );
    blames_the_agent(
        &ran,
        "AG-START",
        &[
            "replica-1 exited (exit status: 127) before its first request",
            "no-such-agent: not found",
        ],
    );
    assert_eq!(text(&ran.reports[0]["simulated"]), "+00:00:00");

    let ran = conformance(
        "true-agent",
        &["--agent-cmd", "true", "--scenario", "short-test"],
    );
    blames_the_agent(
        &ran,
        "AG-START",
        &[
            "replica-1 exited (exit status: 0) before its first request",
            "it wrote nothing to agent.log",
        ],
    );
}

#[test]
fn a_worker_that_exits_with_work_outstanding_is_named_as_the_cause() {
    let cmd = format!(
        "'{}' --mode exits-after-first-job",
        env!("CARGO_BIN_EXE_bad-agent")
    );
    let ran = conformance(
        "exits-after-first-job",
        &["--agent-cmd", &cmd, "--scenario", "short-test"],
    );
    blames_the_agent(
        &ran,
        "AG-EXITED",
        &[
            "every replica has exited while work was outstanding (e-1 unfinished",
            "replica-1 exited (exit status: 3)",
            "fatal: cannot parse the configuration of job",
        ],
    );
}

#[test]
fn the_replay_line_replays_when_pasted_into_bash() {
    let dir = out_dir("replay");
    // A scenario file of the user's own that fails (the reference agent succeeds), and an agent command
    // that a double-quoting replay would break: pasted, `$AWS_REGION` would expand in the user's shell.
    let text = std::fs::read_to_string(scenarios::builtin_dir().join("short-test.toml"))
        .expect("short-test")
        .replace("name = \"short-test\"", "name = \"replay-me\"")
        .replace("outcome = \"Succeeded\"", "outcome = \"Failed\"");
    let file = dir.join("replay-me.toml");
    std::fs::write(&file, text).expect("write the scenario");
    let agent_cmd = format!("test \"$AWS_REGION\" = us-east-1 && exec {}", agent());
    let first = Command::new(env!("CARGO_BIN_EXE_conformance-cli"))
        .current_dir(&dir)
        .args(["--scenario", "replay-me.toml", "--agent-cmd", &agent_cmd])
        .output()
        .expect("conformance runs");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("e-1: Failed; got Succeeded"), "{stderr}");
    let line = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .unwrap_or_else(|| panic!("a replay line in:\n{stderr}"))
        .to_string();

    // Pasted elsewhere, into a shell with no AWS_REGION of its own.
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("a directory");
    let replayed = Command::new("bash")
        .arg("-c")
        .arg(&line)
        .current_dir(&elsewhere)
        .env_remove("AWS_REGION")
        .output()
        .expect("bash runs");
    let again = String::from_utf8_lossy(&replayed.stderr);
    assert_eq!(replayed.status.code(), Some(1), "{line}\n{again}");
    assert!(
        again.contains("e-1: Failed; got Succeeded") && !again.contains("AG-START"),
        "the pasted line ran the same scenario with the same agent command: {line}\n{again}"
    );
    assert!(
        Path::new(&elsewhere)
            .join("target/conformance/replay-me/report.json")
            .exists(),
        "{again}"
    );
}

#[test]
fn the_runner_carries_its_scenarios_and_runs_from_any_directory() {
    // An installed copy: no source tree beside it, no `agent` beside it, started from elsewhere.
    let dir = out_dir("standalone");
    let bin = dir.join("bin").join("conformance");
    std::fs::create_dir_all(bin.parent().expect("a folder")).expect("bin/");
    std::fs::copy(env!("CARGO_BIN_EXE_conformance-cli"), &bin).expect("copy the runner");
    let work = dir.join("my-agent-repo");
    std::fs::create_dir_all(&work).expect("a working directory");

    let list = Command::new(&bin)
        .arg("--list")
        .current_dir(&work)
        .output()
        .expect("runs");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{list:?}");
    assert_eq!(
        listed.lines().count(),
        scenarios::builtin().len(),
        "{listed}"
    );
    assert!(listed.contains("redeploy-mid-job"), "{listed}");

    let without_agent = Command::new(&bin)
        .args(["--scenario", "short-test"])
        .current_dir(&work)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&without_agent.stderr);
    assert_eq!(without_agent.status.code(), Some(1), "{said}");
    assert!(said.contains("give --agent-cmd"), "{said}");

    // A scenario directory of the user's own replaces the built-in ones.
    let mine = work.join("ci-scenarios");
    std::fs::create_dir_all(&mine).expect("a scenario folder");
    let text = std::fs::read_to_string(scenarios::builtin_dir().join("short-test.toml"))
        .expect("short-test")
        .replace("name = \"short-test\"", "name = \"my-short\"");
    std::fs::write(mine.join("my-short.toml"), text).expect("write it");
    let ran = Command::new(&bin)
        .args(["--scenarios-dir", "ci-scenarios", "--agent-cmd", &agent()])
        .current_dir(&work)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{said}");
    assert!(said.contains("running 1 scenario(s)"), "{said}");
    assert!(
        work.join("target/conformance/my-short/report.json")
            .exists(),
        "{said}"
    );
}

#[test]
fn every_flag_the_readme_shows_for_conformance_exists() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let help = Command::new(env!("CARGO_BIN_EXE_conformance-cli"))
        .arg("--help")
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let mut shown = Vec::new();
    for line in readme.lines().map(str::trim) {
        let Some(rest) = line
            .strip_prefix("cargo xtask conformance")
            .or_else(|| line.strip_prefix("conformance "))
            .or_else(|| line.strip_prefix("`cargo xtask conformance"))
        else {
            continue;
        };
        // Flags inside a quoted agent command are the agent's, not the runner's.
        let mut unquoted = String::new();
        let mut quote: Option<char> = None;
        for c in rest.chars() {
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) => unquoted.push(c),
                _ => {}
            }
        }
        for word in unquoted.split(|c: char| c.is_whitespace() || c == '`') {
            if let Some(flag) = word.strip_prefix("--")
                && !flag.is_empty()
            {
                let flag = flag.split('=').next().unwrap_or(flag);
                shown.push(format!("--{flag}"));
            }
        }
    }
    assert!(
        shown.len() >= 10,
        "the README's flags were found: {shown:?}"
    );
    for flag in shown {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "the README shows `{flag}`, which `conformance --help` does not know:\n{help}"
        );
    }
}
