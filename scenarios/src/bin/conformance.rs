//! `conformance`: runs scenario files against an agent command and fails on any unmet expectation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Parser;
use scenarios::scenario::Tier;
use scenarios::world::Overrides;
use scenarios::{RunOptions, Scenario, ScenarioReport, report};

/// Run the conformance scenarios against a CodePipeline job agent, on simulated time.
///
/// Each scenario hosts a fake CodePipeline and a fake Apica backend on loopback ports with one manual
/// clock, starts the agent command as real processes with the contract environment (`docs/design.md`), steps
/// the clock, and judges the run by `docs/protocol.md`'s rule ids. Files go to OUT/<scenario>/ (timeline.txt,
/// report.json, agent.log). Exit status 1 if any scenario fails.
#[derive(Parser, Debug)]
#[command(name = "conformance", version)]
struct Args {
    /// The agent command line (run with `sh -c`); default: the reference `agent` binary beside this one.
    #[arg(long)]
    agent_cmd: Option<String>,

    /// Scenario names or globs (`redeploy-*`), or paths to .toml files; repeatable. Default: all.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,

    /// Where the built-in scenarios are.
    #[arg(long, default_value_os_t = scenarios::builtin_dir())]
    scenarios_dir: PathBuf,

    /// Protocol tier: the action type your agent polls for (`Category/Owner/Provider/Version`).
    /// Runs only the `protocol` scenarios, with this type instead of the Apica one.
    #[arg(long)]
    action_type: Option<String>,

    /// Protocol tier: an action configuration property for every execution, `K=V`; repeatable.
    #[arg(long = "config", value_name = "K=V")]
    config: Vec<String>,

    /// Overrides every scenario's seed (job ids, nonces, faults).
    #[arg(long)]
    seed: Option<u64>,

    /// Write the run's reports as one JSON document here.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,

    /// Output directory for per-scenario files.
    #[arg(long, default_value = "target/conformance")]
    out: PathBuf,

    /// Scenarios run at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,

    /// JOB_POLL_INTERVAL_MS given to the agent.
    #[arg(long, default_value_t = 1)]
    poll_interval_ms: u64,

    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

fn default_agent() -> Result<String> {
    let exe = std::env::current_exe().context("locate this binary")?;
    let agent = exe.with_file_name("agent");
    if !agent.exists() {
        bail!(
            "the reference agent is not built at {}: run `cargo build -p agent`, or give --agent-cmd",
            agent.display()
        );
    }
    Ok(format!("'{}'", agent.display()))
}

fn glob(pattern: &str) -> Result<globset::GlobMatcher> {
    Ok(globset::Glob::new(pattern)
        .with_context(|| format!("`{pattern}` is not a scenario name or glob"))?
        .compile_matcher())
}

fn load_scenarios(args: &Args) -> Result<Vec<Scenario>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.scenarios_dir)
        .with_context(|| format!("read {}", args.scenarios_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut chosen = Vec::new();
    if args.scenarios.is_empty() {
        chosen = files;
    } else {
        for s in &args.scenarios {
            if s.ends_with(".toml") {
                chosen.push(PathBuf::from(s));
                continue;
            }
            let glob = glob(s)?;
            let matched: Vec<PathBuf> = files
                .iter()
                .filter(|p| p.file_stem().is_some_and(|n| glob.is_match(n)))
                .cloned()
                .collect();
            if matched.is_empty() {
                let names: Vec<String> = files
                    .iter()
                    .filter_map(|p| p.file_stem().map(|n| n.to_string_lossy().into_owned()))
                    .collect();
                bail!("no scenario matches `{s}`; there are: {}", names.join(", "));
            }
            chosen.extend(matched);
        }
    }
    chosen.dedup();
    let mut out = Vec::new();
    for path in chosen {
        out.push(Scenario::load(&path)?);
    }
    Ok(out)
}

fn main() -> std::process::ExitCode {
    scenarios::main_with(run())
}

async fn run() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut scenarios = load_scenarios(&args)?;
    let mut config = BTreeMap::new();
    for kv in &args.config {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--config `{kv}` must be K=V"))?;
        config.insert(k.to_string(), v.to_string());
    }
    if args.action_type.is_some() {
        scenarios.retain(|s| s.tier == Tier::Protocol);
    }
    if args.list {
        for s in &scenarios {
            println!(
                "{:<28} {:<9} {}",
                s.name,
                format!("{:?}", s.tier).to_lowercase(),
                s.summary
            );
        }
        return Ok(());
    }
    if scenarios.is_empty() {
        bail!("no scenarios to run");
    }
    let agent_cmd = match &args.agent_cmd {
        Some(c) => c.clone(),
        None => default_agent()?,
    };
    let opts = Arc::new(RunOptions {
        agent_cmd: agent_cmd.clone(),
        out_root: args.out.clone(),
        seed: args.seed,
        overrides: Overrides {
            action_type: args.action_type.clone(),
            config,
        },
        poll_interval_ms: args.poll_interval_ms,
    });
    let replay_extra = {
        let mut x = String::new();
        if let Some(c) = &args.agent_cmd {
            x.push_str(&format!(" --agent-cmd \"{c}\""));
        }
        if let Some(t) = &args.action_type {
            x.push_str(&format!(" --action-type {t}"));
        }
        for c in &args.config {
            x.push_str(&format!(" --config {c}"));
        }
        x
    };

    let total = scenarios.len();
    eprintln!(
        "running {total} scenario(s), {} at a time, agent: {agent_cmd}",
        args.jobs.max(1)
    );
    let gate = Arc::new(tokio::sync::Semaphore::new(args.jobs.max(1)));
    // A progress bar on a terminal; on a pipe (CI) indicatif draws nothing and the lines below remain.
    let progress = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} scenarios  {elapsed}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut tasks = Vec::new();
    for scenario in scenarios {
        let (gate, opts, progress) = (gate.clone(), opts.clone(), progress.clone());
        let seed = args.seed.unwrap_or(scenario.seed);
        let replay = format!(
            "cargo xtask conformance --scenario {} --seed {seed}{replay_extra}",
            scenario.name
        );
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            progress.set_message(scenario.name.clone());
            let report = scenarios::run_and_judge(&scenario, &opts, replay).await;
            let mut lines = vec![format!(
                "{} {:<28} {:>7.2}s  {}",
                if report.passed { "pass" } else { "FAIL" },
                report.name,
                report.real_ms as f64 / 1000.0,
                report.simulated
            )];
            if !report.passed {
                lines.extend(report.failures().into_iter().map(|f| format!("     {f}")));
                lines.push(format!("     replay: {}", report.replay));
                lines.push(format!("     timeline: {}/timeline.txt", report.dir));
            }
            progress.suspend(|| eprintln!("{}", lines.join("\n")));
            progress.inc(1);
            report
        }));
    }
    let mut reports: Vec<ScenarioReport> = Vec::new();
    for t in tasks {
        reports.push(t.await.context("a scenario task panicked")?);
    }
    progress.finish_and_clear();
    println!("{}", report::summary_table(&reports));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&reports)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if reports.iter().any(|r| !r.passed) {
        std::process::exit(1);
    }
    Ok(())
}
