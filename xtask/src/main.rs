//! `cargo xtask`: the project's tasks. Thin on purpose: it runs cargo and the `conformance` binary, and
//! links no heavy crate.
//!
//! - `cargo xtask conformance [ARGS]`: builds the workspace (the reference agent, the runner, and the test
//!   targets, so `cargo test` shares the build), then runs `conformance ARGS` (see
//!   `cargo xtask conformance --help`). `--help`, `--version` and `--list` build only the runner.
//! - `cargo xtask sim [ARGS]`: builds the workspace likewise, then runs `sim ARGS`: both fakes on one clock on
//!   fixed loopback ports, with the console at `/` (see `cargo xtask sim --help`).
//! - `cargo xtask explore-proof [ARGS]`: builds the workspace likewise, then runs `explore-proof ARGS`
//!   (`tests/src/bin/explore-proof.rs`): every `bad-agent` mode found by exploration alone.
//! - `cargo xtask probe [ARGS]`: builds the `probe` binary (`probe/`), then runs `probe ARGS`: black-box
//!   probes of what AWS leaves undocumented, against any endpoint, with a JSON report (docs/probe.md).
//! - `cargo xtask bench`: times the two-hour scenario and the whole suite (simulated seconds per real
//!   second, suite time, scenarios per minute and the slowest scenarios, against the targets of
//!   `docs/design.md`), then the fake CodePipeline's throughput and memory
//!   (`tests/examples/cp_throughput.rs`, `cp_memory.rs`) and the artifact store's throughput for 1 MB
//!   objects (`store_throughput.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// Builds the workspace's binaries together with its test targets. With the test targets in the build,
/// dependencies get the same features as under `cargo test --workspace` (dev-dependencies such as
/// wiremock and proptest turn on features of hyper, futures and getrandom), so the README's two commands
/// share one set of artifacts: after `cargo test`, this is a few seconds, where building only
/// `-p agent -p scenarios` recompiled 40 crates (2 min on 2 cores).
///
/// Cargo's own progress shows on a terminal: a first build on 2 cores takes minutes, and silence would look
/// like a hang.
fn build() -> Result<(), String> {
    eprintln!(
        "xtask: building the workspace (its binaries and test targets; minutes the first time)"
    );
    run_cargo(&["build", "--workspace", "--bins", "--tests"])
}

/// Builds only the `conformance` runner: enough for `--help`, `--version` and `--list`, which run no agent.
fn build_runner() -> Result<(), String> {
    eprintln!("xtask: building the conformance runner");
    run_cargo(&["build", "-p", "scenarios", "--bin", "conformance"])
}

fn run_cargo(args: &[&str]) -> Result<(), String> {
    let mut c = cargo();
    c.args(args);
    let status = c.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed", args.join(" ")))
    }
}

/// Whether `conformance ARGS` only prints something about the runner (and needs no agent built).
fn runner_only(args: &[String]) -> bool {
    args.first().is_some_and(|a| a == "merge-reports")
        || args
            .iter()
            .take_while(|a| *a != "--")
            .any(|a| matches!(a.as_str(), "--help" | "-h" | "--version" | "-V" | "--list"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn conformance(args: &[String]) -> Result<ExitCode, String> {
    if runner_only(args) {
        build_runner()?;
    } else {
        build()?;
    }
    let bin = target_dir().join("debug").join("conformance");
    let mut c = Command::new(&bin);
    c.args(args)
        .current_dir(workspace_root())
        // Replay lines start with what the user typed, and relative paths mean the user's directory.
        .env("CONFORMANCE_INVOKED_AS", "cargo xtask conformance");
    if let Ok(dir) = std::env::current_dir() {
        c.env("CONFORMANCE_CALLER_DIR", dir);
    }
    let status = c
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask explore-proof [ARGS]`: builds the workspace, then runs `explore-proof ARGS`: every
/// `bad-agent` mode found by exploration alone, shrunk and replayed.
fn explore_proof(args: &[String]) -> Result<ExitCode, String> {
    build()?;
    run_built("explore-proof", args)
}

/// Runs the workspace binary `name` with `args` from the workspace root; its exit status is ours.
fn run_built(name: &str, args: &[String]) -> Result<ExitCode, String> {
    let bin = target_dir().join("debug").join(name);
    let status = Command::new(&bin)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask probe [ARGS]`: builds only the `probe` binary (it links the SDK, not the fakes), then
/// runs `probe ARGS` from the workspace root (its default report is `target/probe/report.json`).
fn probe(args: &[String]) -> Result<ExitCode, String> {
    eprintln!("xtask: building the probe");
    run_cargo(&["build", "-p", "probe", "--bin", "probe"])?;
    run_built("probe", args)
}

fn sim(args: &[String]) -> Result<ExitCode, String> {
    build()?;
    run_built("sim", args)
}

/// How many generated scenarios `bench` runs per run to measure exploration's rate.
const EXPLORE_BENCH: usize = 30;

fn bench(args: &[String]) -> Result<ExitCode, String> {
    build()?;
    let bin = target_dir().join("debug").join("conformance");
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut two_hour = Vec::new();
    let mut suite = Vec::new();
    // Per run: generated scenarios per minute, and each suite scenario's real time (its report's `real_ms`).
    let mut per_minute = Vec::new();
    let mut scenario_ms: Vec<(String, Vec<f64>)> = Vec::new();
    for i in 0..runs {
        let out = target_dir().join("bench").join(format!("run-{i}"));
        // A fresh directory: the reports counted below are this run's.
        let _ = std::fs::remove_dir_all(&out);
        let report = out.join("two-hour.json");
        let t0 = Instant::now();
        let st = Command::new(&bin)
            .args(["--scenario", "two-hour-test", "--jobs", "1", "--json"])
            .arg(&report)
            .arg("--out")
            .arg(&out)
            .current_dir(workspace_root())
            .status()
            .map_err(|e| e.to_string())?;
        let real = t0.elapsed().as_secs_f64();
        if !st.success() {
            return Err("the two-hour scenario failed; see its timeline".into());
        }
        two_hour.push(real);
        let t0 = Instant::now();
        let st = Command::new(&bin)
            .arg("--out")
            .arg(&out)
            .arg("--json")
            .arg(out.join("suite.json"))
            .current_dir(workspace_root())
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("the suite failed".into());
        }
        let real = t0.elapsed().as_secs_f64();
        suite.push(real);
        let reports = scenario_real_ms(&out);
        // Exploration: 30 generated scenarios (fixed seeds) with the reference agent.
        let t0 = Instant::now();
        let st = Command::new(&bin)
            .args([
                "--explore",
                &EXPLORE_BENCH.to_string(),
                "--seed",
                "1000",
                "--shrink-runs",
                "0",
                "--allow-inconclusive",
                "--out",
            ])
            .arg(out.join("explore"))
            .current_dir(workspace_root())
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("a generated scenario failed with the reference agent; see above".into());
        }
        per_minute.push(EXPLORE_BENCH as f64 * 60.0 / t0.elapsed().as_secs_f64());
        for (name, ms) in reports {
            match scenario_ms.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(ms),
                None => scenario_ms.push((name, vec![ms])),
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (m2, ms) = (median(&mut two_hour), median(&mut suite));
    // The two-hour scenario covers 2 h plus its 1 m tail of simulated time.
    let simulated = 2.0 * 3600.0 + 60.0;
    println!(
        "two-hour-test: median {m2:.2} s real over {runs} run(s) = {:.0} simulated s per real s (target >= 5000)",
        simulated / m2
    );
    println!("whole suite:   median {ms:.2} s real over {runs} run(s) (target < 8 s on 2 cores)");
    println!(
        "exploration:   median {:.1} generated scenarios per minute over {runs} run(s) of {EXPLORE_BENCH} (seeds 1000..{}; target >= 60)",
        median(&mut per_minute),
        1000 + EXPLORE_BENCH - 1
    );
    let mut slowest: Vec<(String, f64)> = scenario_ms
        .iter_mut()
        .map(|(n, v)| (n.clone(), median(v) / 1000.0))
        .collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let slowest: Vec<String> = slowest
        .iter()
        .take(5)
        .map(|(n, s)| format!("{n} {s:.1} s"))
        .collect();
    println!(
        "slowest:       {} (median real time each)",
        slowest.join(", ")
    );
    // The fake CodePipeline: job-worker cycles with real SDK clients (end to end, and the server's CPU per
    // request), pre-signed requests from a light client (the server's own rate), and memory with 10,000
    // executions in flight (targets: 20,000 requests/s with p99 < 5 ms; under 200 MB).
    for example in [
        ["cp_throughput", "8", "5"],
        ["cp_server_load", "16", "5"],
        ["cp_memory", "10000", ""],
        ["store_throughput", "8", "5"],
    ] {
        let mut c = cargo();
        c.args([
            "run",
            "--quiet",
            "-p",
            "tests",
            "--example",
            example[0],
            "--",
        ]);
        c.args(example[1..].iter().filter(|a| !a.is_empty()));
        let st = c.status().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("the {} example failed", example[0]));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Each scenario's real time in a run's output directory: `(name, real_ms)` from every
/// `<scenario>/report.json` (its first `"real_ms"`, the run's own; xtask links no JSON parser).
fn scenario_real_ms(out: &Path) -> Vec<(String, f64)> {
    let Ok(dir) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("report.json")).ok()?;
            let rest = &text[text.find("\"real_ms\":")? + "\"real_ms\":".len()..];
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some((
                e.file_name().to_string_lossy().into_owned(),
                digits.parse().ok()?,
            ))
        })
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("conformance") => conformance(&args[1..]),
        Some("sim") => sim(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("explore-proof") => explore_proof(&args[1..]),
        Some("probe") => probe(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <conformance [ARGS] | sim [ARGS] | bench [RUNS] | explore-proof [ARGS] | probe [ARGS]>\n\n  conformance    run the conformance scenarios (see `cargo xtask conformance --help`)\n  sim            both fakes and the console for your own agent (see `cargo xtask sim --help`)\n  bench          time the two-hour scenario, the whole suite and exploration (median of RUNS, default 3)\n  explore-proof  find every bad-agent mode by exploration alone (see `cargo xtask explore-proof --help`)\n  probe          measure what AWS leaves undocumented, against AWS or the fake (see `cargo xtask probe --help`)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::runner_only;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn help_version_and_list_need_only_the_runner() {
        for a in [
            &["--help"][..],
            &["-h"],
            &["--version"],
            &["--list"],
            &["--action-type", "A/B/C/1", "--list"],
            &["merge-reports", "a.json", "b.json"],
        ] {
            assert!(runner_only(&args(a)), "{a:?}");
        }
        for a in [
            &[][..],
            &["--scenario", "short-test"],
            &["--agent-cmd", "my-agent --list"],
            &["--", "--help"],
            &["--explore", "20", "--agent-cmd", "merge-reports"],
        ] {
            assert!(!runner_only(&args(a)), "{a:?}");
        }
    }
}
