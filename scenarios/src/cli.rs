//! The `conformance` command line: runs scenario files against an agent command and fails on any unmet
//! expectation. The binaries call [`main`]; the code is here so that it is one copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::scenario::Tier;
use crate::world::Overrides;
use crate::{RunOptions, Scenario, ScenarioReport, ScenarioResult, report};
use anyhow::{Context, Result, bail};
use clap::Parser;

/// Run the conformance scenarios against a CodePipeline job agent, on simulated time.
///
/// Each scenario hosts a fake CodePipeline and a fake Apica backend on loopback ports with one manual
/// clock, starts the agent command as real processes with the contract environment (`docs/design.md`), steps
/// the clock, and judges the run by `docs/protocol.md`'s rule ids. Files go to OUT/<scenario>/ (timeline.txt,
/// report.json, events.jsonl, agent.log). The built-in scenarios are compiled in: the binary runs from any
/// directory. Exit status 1 if any scenario fails, or is inconclusive without --allow-inconclusive.
#[derive(Parser, Debug)]
#[command(name = "conformance", version)]
struct Args {
    /// The agent command line (run with `sh -c`); default: the reference `agent` binary beside this one.
    #[arg(long)]
    agent_cmd: Option<String>,

    /// Scenario names or globs (`redeploy-*`), or paths to .toml files; repeatable. Default: all.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,

    /// Run the scenario files of this directory instead of the built-in ones.
    #[arg(long)]
    scenarios_dir: Option<PathBuf>,

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

    /// Write JUnit XML here (an inconclusive scenario is `skipped`, with the reason).
    #[arg(long)]
    junit: Option<PathBuf>,

    /// Output directory for per-scenario files [default: target/conformance].
    #[arg(long)]
    out: Option<PathBuf>,

    /// Scenarios run at once [default: twice the cores, at least 8]. Most of a scenario's real time is
    /// spent waiting (an SDK's backoff, an answer budget), not computing, so more run at once than there
    /// are cores.
    #[arg(long)]
    jobs: Option<usize>,

    /// JOB_POLL_INTERVAL_MS given to the agent.
    #[arg(long, default_value_t = 1)]
    poll_interval_ms: u64,

    /// Exit 0 when scenarios are inconclusive (their premise did not happen: a step that never ran
    /// while work was outstanding, work shorter than the scenario is about); failures still exit 1.
    #[arg(long)]
    allow_inconclusive: bool,

    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,

    /// Run N generated scenarios instead (seeds S, S+1, ... from --seed, random when not given), judged
    /// by the invariants every correct agent keeps; each failure is shrunk and written to
    /// OUT/explore/SEED.toml with the command that replays it (`docs/design.md`, "Exploration").
    #[arg(long, value_name = "N", conflicts_with_all = ["scenarios", "scenarios_dir"])]
    explore: Option<usize>,

    /// Only the built-in scenarios of this tier: `apica`, `protocol` or `artifacts` [default: protocol
    /// with --action-type, else every tier]. With --explore, the tier to generate, `apica` or `protocol`
    /// [default: protocol with --action-type, else apica].
    #[arg(long, value_parser = parse_tier)]
    tier: Option<Tier>,

    /// With --explore: stop starting scenarios once this many have failed.
    #[arg(long, requires = "explore", value_name = "K")]
    max_failures: Option<usize>,

    /// With --explore: the most runs spent shrinking each failure (0: write it as generated).
    #[arg(long, requires = "explore", default_value_t = 40, value_name = "RUNS")]
    shrink_runs: usize,

    /// Run only part I of N of the scenarios (or of the generated seeds), e.g. `--shard 2/4`, so that N CI
    /// runners share one run; `conformance merge-reports` joins their JSON reports.
    #[arg(long, value_name = "I/N")]
    shard: Option<crate::explore::Shard>,
}

impl Args {
    /// `--jobs`, or its default: twice the cores, at least 8.
    fn jobs(&self) -> usize {
        self.jobs
            .unwrap_or_else(|| {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                (2 * cores).max(8)
            })
            .max(1)
    }
}

fn parse_tier(s: &str) -> std::result::Result<Tier, String> {
    s.parse()
}

/// `conformance merge-reports`: joins the JSON reports of several runs (the shards of one run).
#[derive(Parser, Debug)]
#[command(name = "conformance merge-reports", version)]
struct MergeArgs {
    /// The `--json` reports to join.
    #[arg(required = true)]
    reports: Vec<PathBuf>,

    /// Write the joined reports as one JSON document here.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Write JUnit XML of the joined reports here.
    #[arg(long)]
    junit: Option<PathBuf>,

    /// Exit 0 when scenarios are inconclusive; failures still exit 1.
    #[arg(long)]
    allow_inconclusive: bool,
}

/// The directory relative paths are meant from: the caller's, which `cargo xtask` passes on (it runs this
/// binary from the workspace root).
fn caller_dir() -> Option<PathBuf> {
    std::env::var_os("CONFORMANCE_CALLER_DIR").map(PathBuf::from)
}

fn resolve(p: &Path) -> PathBuf {
    match caller_dir() {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_path_buf(),
    }
}

fn default_agent() -> Result<String> {
    let exe = std::env::current_exe().context("locate this binary")?;
    let agent = exe.with_file_name("agent");
    if !agent.exists() {
        bail!(
            "the reference agent is not built at {}: give --agent-cmd with your agent's command (or, in this repository, run `cargo build -p agent`)",
            agent.display()
        );
    }
    Ok(quote(&agent.display().to_string()))
}

/// `s` quoted for bash, unchanged when it needs no quotes.
fn quote(s: &str) -> String {
    shlex::try_quote(s).map_or_else(|_| format!("{s:?}"), |q| q.into_owned())
}

fn glob(pattern: &str) -> Result<globset::GlobMatcher> {
    Ok(globset::Glob::new(pattern)
        .with_context(|| format!("`{pattern}` is not a scenario name or glob"))?
        .compile_matcher())
}

/// A scenario to run, with the arguments that select it again in a replay line.
struct Chosen {
    scenario: Scenario,
    replay_args: Vec<String>,
    /// A generated scenario: what it was generated from (and is shrunk from).
    generated: Option<crate::explore::Generated>,
}

fn load_scenarios(args: &Args) -> Result<Vec<Chosen>> {
    // (name, where it comes from)
    let dir = args.scenarios_dir.as_deref().map(resolve);
    let available: Vec<(String, Option<PathBuf>)> = match &dir {
        None => crate::builtin()
            .iter()
            .map(|(n, _)| (n.to_string(), None))
            .collect(),
        Some(dir) => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("read --scenarios-dir {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            files
                .into_iter()
                .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), Some(p))))
                .collect()
        }
    };
    let mut chosen: Vec<(String, Option<PathBuf>, bool)> = Vec::new();
    if args.scenarios.is_empty() {
        chosen.extend(available.iter().map(|(n, p)| (n.clone(), p.clone(), false)));
    } else {
        for s in &args.scenarios {
            if s.ends_with(".toml") {
                chosen.push((s.clone(), Some(resolve(Path::new(s))), true));
                continue;
            }
            let glob = glob(s)?;
            let matched: Vec<_> = available
                .iter()
                .filter(|(n, _)| glob.is_match(n))
                .map(|(n, p)| (n.clone(), p.clone(), false))
                .collect();
            if matched.is_empty() {
                let names: Vec<&str> = available.iter().map(|(n, _)| n.as_str()).collect();
                bail!("no scenario matches `{s}`; there are: {}", names.join(", "));
            }
            chosen.extend(matched);
        }
    }
    let mut out: Vec<Chosen> = Vec::new();
    for (name, path, is_file) in chosen {
        let scenario = match &path {
            Some(p) => Scenario::load(p)?,
            None => crate::load_builtin(&name)
                .with_context(|| format!("no built-in scenario `{name}`"))??,
        };
        let mut replay_args = Vec::new();
        match (&path, is_file) {
            // A file named on the command line: by its absolute path, so the line works from anywhere.
            (Some(p), true) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                replay_args.extend(["--scenario".into(), abs.display().to_string()]);
            }
            _ => {
                if let Some(d) = &dir {
                    let abs = std::path::absolute(d).unwrap_or_else(|_| d.clone());
                    replay_args.extend(["--scenarios-dir".into(), abs.display().to_string()]);
                }
                replay_args.extend(["--scenario".into(), name.clone()]);
            }
        }
        if !out.iter().any(|c| c.replay_args == replay_args) {
            out.push(Chosen {
                scenario,
                replay_args,
                generated: None,
            });
        }
    }
    Ok(out)
}

/// How this runner was started, for replay lines: `cargo xtask conformance` when xtask says so, else the
/// binary as it was called (by name when found on PATH, else by its absolute path).
fn invoked_as() -> String {
    if let Ok(s) = std::env::var("CONFORMANCE_INVOKED_AS") {
        return s;
    }
    let argv0 = std::env::args()
        .next()
        .unwrap_or_else(|| "conformance".into());
    if !argv0.contains('/') {
        return quote(&argv0);
    }
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or(argv0);
    quote(&exe)
}

/// The line that replays one scenario, quoted so that it works when pasted into bash (an agent command
/// with `$VAR` in it is not expanded by the paste).
fn replay_line(args: &Args, chosen: &Chosen, seed: u64) -> String {
    let mut words: Vec<String> = chosen.replay_args.clone();
    if chosen.generated.is_none() {
        words.extend(["--seed".into(), seed.to_string()]);
    }
    agent_words(args, words)
}

/// `words` after the runner's name, with the agent's flags of this run.
fn agent_words(args: &Args, mut words: Vec<String>) -> String {
    if let Some(c) = &args.agent_cmd {
        words.extend(["--agent-cmd".into(), c.clone()]);
    }
    if let Some(t) = &args.action_type {
        words.extend(["--action-type".into(), t.clone()]);
    }
    for c in &args.config {
        words.extend(["--config".into(), c.clone()]);
    }
    if args.poll_interval_ms != 1 {
        words.extend([
            "--poll-interval-ms".into(),
            args.poll_interval_ms.to_string(),
        ]);
    }
    let mut line = invoked_as();
    for w in words {
        line.push(' ');
        line.push_str(&quote(&w));
    }
    line
}

/// The `conformance` binary: parses the command line, runs, prints, exits.
pub fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("merge-reports") {
        return crate::main_with(merge_reports());
    }
    crate::main_with(run())
}

async fn run() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut chosen = match args.explore {
        Some(n) => generate(&args, n)?,
        None => {
            let mut all = load_scenarios(&args)?;
            if let Some(shard) = args.shard {
                let mut i = 0;
                all.retain(|_| {
                    i += 1;
                    shard.includes(i - 1)
                });
            }
            all
        }
    };
    let mut config = BTreeMap::new();
    for kv in &args.config {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--config `{kv}` must be K=V"))?;
        config.insert(k.to_string(), v.to_string());
    }
    match (args.tier, &args.action_type) {
        _ if args.explore.is_some() => {}
        (Some(t), _) => chosen.retain(|c| c.scenario.tier == t),
        (None, Some(_)) => chosen.retain(|c| c.scenario.tier == Tier::Protocol),
        (None, None) => {}
    }
    if args.list {
        for c in &chosen {
            let s = &c.scenario;
            println!(
                "{:<28} {:<9} {}",
                s.name,
                format!("{:?}", s.tier).to_lowercase(),
                s.summary
            );
        }
        return Ok(());
    }
    if chosen.is_empty() {
        bail!("no scenarios to run");
    }
    let agent_cmd = match &args.agent_cmd {
        Some(c) => c.clone(),
        None => default_agent()?,
    };
    let out_root = args
        .out
        .as_deref()
        .map_or_else(|| PathBuf::from("target/conformance"), resolve);
    let opts = Arc::new(RunOptions {
        agent_cmd: agent_cmd.clone(),
        out_root,
        // With --explore, --seed is where the seeds start; each generated scenario carries its own.
        seed: args.seed.filter(|_| args.explore.is_none()),
        overrides: Overrides {
            action_type: args.action_type.clone(),
            config,
        },
        poll_interval_ms: args.poll_interval_ms,
    });

    let total = chosen.len();
    eprintln!(
        "running {total} scenario(s), {} at a time, agent: {agent_cmd}",
        args.jobs()
    );
    let gate = Arc::new(tokio::sync::Semaphore::new(args.jobs()));
    // A progress bar on a terminal; on a pipe (CI) indicatif draws nothing and the lines below remain.
    let progress = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} scenarios  {elapsed}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let max_failures = args.max_failures.unwrap_or(usize::MAX);
    // Generated scenarios start longest first (by their cost estimate), so that a long one does not start
    // last and run alone at the end; reports stay in the given order.
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(chosen[i].generated.as_ref().map_or(0, |g| g.cost())));
    let mut slots: Vec<Option<Chosen>> = chosen.into_iter().map(Some).collect();
    let mut tasks: Vec<Option<tokio::task::JoinHandle<Option<ScenarioReport>>>> =
        (0..slots.len()).map(|_| None).collect();
    let mut generated: Vec<Option<crate::explore::Generated>> = vec![None; slots.len()];
    for i in order {
        let c = slots[i].take().expect("each index once");
        let (gate, opts, progress) = (gate.clone(), opts.clone(), progress.clone());
        let failures = failures.clone();
        let seed = opts.seed.unwrap_or(c.scenario.seed);
        let replay = replay_line(&args, &c, seed);
        generated[i] = c.generated;
        let scenario = c.scenario;
        tasks[i] = Some(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            if failures.load(std::sync::atomic::Ordering::SeqCst) >= max_failures {
                progress.inc(1);
                return None;
            }
            progress.set_message(scenario.name.clone());
            let report = crate::run_and_judge(&scenario, &opts, replay).await;
            if report.result == ScenarioResult::Fail {
                failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let mut lines = vec![format!(
                "{:<4} {:<28} {:>7.2}s  {}",
                report.result.word(),
                report.name,
                report.real_ms as f64 / 1000.0,
                report.simulated
            )];
            match report.result {
                ScenarioResult::Pass => {}
                ScenarioResult::Fail => {
                    lines.extend(report.failures().into_iter().map(|f| format!("     {f}")));
                }
                ScenarioResult::Inconclusive => {
                    lines.extend(
                        report
                            .verdict
                            .inconclusive
                            .iter()
                            .map(|f| format!("     inconclusive: {f}")),
                    );
                }
            }
            if report.result != ScenarioResult::Pass {
                if let Some(seed) = scenario.name.strip_prefix("explore-") {
                    lines.push(format!(
                        "     generated from seed {seed}: {}",
                        scenario.summary
                    ));
                }
                lines.push(format!("     replay: {}", report.replay));
                if report.agent_died() {
                    lines.push(format!("     agent.log: {}/agent.log", report.dir));
                } else if !report.dir.is_empty() {
                    lines.push(format!("     timeline: {}/timeline.txt", report.dir));
                }
            }
            progress.suspend(|| eprintln!("{}", lines.join("\n")));
            progress.inc(1);
            Some(report)
        }));
    }
    let mut reports: Vec<ScenarioReport> = Vec::new();
    let mut failed_generated = Vec::new();
    for (t, g) in tasks.into_iter().zip(generated) {
        let t = t.expect("every scenario was started");
        if let Some(r) = t.await.context("a scenario task panicked")? {
            if r.result == ScenarioResult::Fail
                && let Some(g) = g
                && let Some(key) = crate::explore::failure_keys(&r).into_iter().next()
            {
                failed_generated.push((g, key));
            }
            reports.push(r);
        }
    }
    progress.finish_and_clear();
    if reports.len() < total {
        eprintln!(
            "stopped after {max_failures} failure(s) (--max-failures): {} of {total} scenario(s) ran",
            reports.len()
        );
    }
    // With --max-failures K, the first K failures (in seed order) are shrunk.
    failed_generated.truncate(max_failures);
    for (g, key) in &failed_generated {
        eprintln!(
            "shrinking {} while {key} fails (at most {} run(s))",
            g.name(),
            args.shrink_runs
        );
        match shrink(&args, &opts, g, key).await {
            Ok(lines) => eprintln!("{}", lines.join("\n")),
            Err(e) => eprintln!("     cannot shrink {}: {e:#}", g.name()),
        }
    }
    println!("{}", report::summary_table(&reports));
    write_reports(&reports, args.json.as_deref(), args.junit.as_deref())?;
    exit_for(&reports, args.allow_inconclusive);
    Ok(())
}

/// Joins the JSON reports of several runs, prints the summary table, writes the joined JSON and JUnit.
async fn merge_reports() -> Result<()> {
    let args = MergeArgs::parse_from(std::env::args().skip(1));
    let mut reports: Vec<ScenarioReport> = Vec::new();
    for path in &args.reports {
        let path = resolve(path);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("read report {}", path.display()))?;
        let part: Vec<ScenarioReport> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a `conformance --json` report (a JSON array of scenario reports)",
                path.display()
            )
        })?;
        reports.extend(part);
    }
    println!("{}", report::summary_table(&reports));
    write_reports(&reports, args.json.as_deref(), args.junit.as_deref())?;
    exit_for(&reports, args.allow_inconclusive);
    Ok(())
}

/// Writes the run's reports as one JSON array and as JUnit XML, where asked.
fn write_reports(
    reports: &[ScenarioReport],
    json: Option<&Path>,
    junit: Option<&Path>,
) -> Result<()> {
    if let Some(path) = json {
        let path = resolve(path);
        std::fs::write(&path, serde_json::to_string_pretty(reports)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = junit {
        let path = resolve(path);
        std::fs::write(&path, report::junit(reports)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// Exits 1 if a scenario failed, or was inconclusive without `allow_inconclusive`.
fn exit_for(reports: &[ScenarioReport], allow_inconclusive: bool) {
    let failed = reports.iter().any(|r| r.result == ScenarioResult::Fail);
    let inconclusive = reports
        .iter()
        .any(|r| r.result == ScenarioResult::Inconclusive);
    if inconclusive && !allow_inconclusive {
        eprintln!(
            "inconclusive scenarios did not test their premise (see above); --allow-inconclusive accepts them"
        );
    }
    if failed || (inconclusive && !allow_inconclusive) {
        std::process::exit(1);
    }
}

/// The most scenarios one `--explore` run (or shard) generates: they are generated before it starts.
const MAX_EXPLORE: usize = 100_000;

/// The generated scenarios of `--explore N`: seeds S..S+N (this shard's), with S printed.
fn generate(args: &Args, n: usize) -> Result<Vec<Chosen>> {
    // This shard's share is generated before the run starts.
    let share = args.shard.map_or(n, |s| n.div_ceil(s.count));
    if share > MAX_EXPLORE {
        bail!(
            "--explore {n} gives one run {share} scenarios, more than it generates ({MAX_EXPLORE}); split it with --shard I/N or run it in parts with --seed"
        );
    }
    let start = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_000)
    });
    let tier = args.tier.unwrap_or(if args.action_type.is_some() {
        Tier::Protocol
    } else {
        Tier::Apica
    });
    if tier == Tier::Artifacts {
        bail!(
            "--explore generates `apica` or `protocol` scenarios, not `artifacts`; run the artifacts tier's built-in scenarios with --tier artifacts"
        );
    }
    eprintln!(
        "exploring {n} generated {} scenario(s), seeds {start}..{} (this exploration again: --explore {n} --seed {start})",
        format!("{tier:?}").to_lowercase(),
        start.saturating_add(n as u64).saturating_sub(1)
    );
    let mut out = Vec::new();
    for i in 0..n {
        if args.shard.is_some_and(|s| !s.includes(i)) {
            continue;
        }
        let seed = start.wrapping_add(i as u64);
        let g = crate::explore::Generated::generate(seed, tier);
        let scenario = g.scenario(Path::new(&format!("{}.toml", g.name())))?;
        let mut replay_args = vec![
            "--explore".into(),
            "1".into(),
            "--seed".into(),
            seed.to_string(),
        ];
        if args.tier.is_some() {
            replay_args.extend(["--tier".into(), format!("{tier:?}").to_lowercase()]);
        }
        out.push(Chosen {
            scenario,
            replay_args,
            generated: Some(g),
        });
    }
    Ok(out)
}

/// Shrinks a failing generated scenario while `key` keeps failing; writes the smallest to
/// OUT/explore/SEED.toml, runs it once more where the report's files go, and returns its lines.
async fn shrink(
    args: &Args,
    opts: &RunOptions,
    generated: &crate::explore::Generated,
    key: &str,
) -> Result<Vec<String>> {
    let (best, runs) =
        crate::explore::shrink(generated, key, opts, args.shrink_runs, args.jobs()).await?;
    let file = crate::explore::failure_file(&opts.out_root, best.seed);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let abs = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
    let replay = agent_words(args, vec!["--scenario".into(), abs.display().to_string()]);
    let text = format!(
        "# {key} fails here: shrunk in {runs} run(s) from `--explore 1 --seed {}`.\n# Replay: {replay}\n{}",
        best.seed,
        best.render()
    );
    std::fs::write(&file, text).with_context(|| format!("write {}", file.display()))?;
    let scenario = Scenario::load(&file)?;
    let again = crate::run_and_judge(&scenario, opts, replay.clone()).await;
    let mut lines = vec![format!(
        "     shrunk ({runs} run(s)): {}{}",
        abs.display(),
        if crate::explore::failure_keys(&again)
            .iter()
            .any(|k| k == key)
        {
            String::new()
        } else {
            format!(" (its last run did not fail with {key}: the failure depends on timing)")
        }
    )];
    lines.push(format!("     replay: {replay}"));
    if !again.dir.is_empty() {
        lines.push(format!("     timeline: {}/timeline.txt", again.dir));
    }
    Ok(lines)
}
