//! `explore-proof`: proof that exploration finds bugs. For each misbehaving mode of `bad-agent` (beside this
//! binary), generated scenarios are run in seed order (no scenario targets the mode) until one fails with
//! the mode's rule id; that scenario is shrunk while the rule keeps failing, written out, and replayed
//! from its file, which must fail with the rule again. Prints, per mode, the first seed that found it.
//! `cargo xtask explore-proof` runs it; CI runs a reduced version (`tests/tests/explore.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use scenarios::explore::Generated;
use scenarios::scenario::Tier;
use scenarios::{RunOptions, Scenario, ScenarioReport};

/// Each `bad-agent` mode and the rule that must find it (the table of `bad-agent --help`).
const MODES: [(&str, &str); 12] = [
    ("naive", "CP-TIMEOUT"),
    ("early-success", "AG-OUTCOME"),
    ("restart-every-job", "AG-ONE-TEST"),
    ("no-ack", "CP-ACK"),
    ("success-after-failure", "CP-TERMINAL"),
    ("final-with-token", "AG-FINAL-TOKEN"),
    ("ignores-sigterm", "AG-REDEPLOY"),
    ("no-external-id", "AG-LINK-EARLY"),
    ("no-backoff", "AG-BACKOFF"),
    ("never-polls", "AG-START"),
    ("exits-after-first-job", "AG-EXITED"),
    ("restart-on-lost-answer", "AG-ONE-TEST"),
];

/// Finds every bad-agent mode by exploration alone, shrinks each finding and replays it.
#[derive(Parser, Debug)]
#[command(name = "explore-proof", version)]
struct Args {
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// How many seeds each mode may take before it counts as not found.
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// Only these modes (comma-separated); default: all.
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Runs spent shrinking each finding.
    #[arg(long, default_value_t = 20)]
    shrink_runs: usize,
    /// Scenarios run at once, per mode.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// Modes proven at once (each runs its own scenarios; they mostly wait, so several fit on 2 cores).
    #[arg(long, default_value_t = 4)]
    modes_at_once: usize,
    /// Output directory [default: target/conformance/proof].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn has_rule(r: &ScenarioReport, rule: &str) -> bool {
    r.verdict.violations.iter().any(|v| v.rule.id() == rule)
}

struct Finding {
    seed: u64,
    ran: u64,
    file: PathBuf,
    replayed: bool,
}

async fn prove(args: &Args, bad_agent: &Path, mode: &str, rule: &str) -> Result<Option<Finding>> {
    let out_root = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/conformance/proof"))
        .join(mode);
    let opts = RunOptions {
        agent_cmd: format!(
            "{} --mode {mode}",
            shlex::try_quote(&bad_agent.display().to_string())?
        ),
        out_root: out_root.clone(),
        seed: None,
        overrides: Default::default(),
        poll_interval_ms: 1,
    };
    let mut next = args.from;
    let end = args.from + args.seeds;
    let mut ran = 0;
    while next < end {
        // A batch in seed order; the lowest seed of the batch that finds the rule counts.
        let batch: Vec<u64> = (next..end.min(next + args.jobs.max(1) as u64)).collect();
        next += batch.len() as u64;
        let mut tasks = Vec::new();
        for &seed in &batch {
            let g = Generated::generate(seed, Tier::Apica);
            let scenario = g.scenario(Path::new(&format!("{}.toml", g.name())))?;
            let opts = opts.clone();
            tasks.push(tokio::spawn(async move {
                (
                    g,
                    scenarios::run_and_judge(&scenario, &opts, String::new()).await,
                )
            }));
        }
        let mut found = None;
        for t in tasks {
            let (g, report) = t.await.context("a scenario task panicked")?;
            ran += 1;
            if found.is_none() && has_rule(&report, rule) {
                found = Some(g);
            }
        }
        let Some(g) = found else { continue };
        let (small, runs) =
            scenarios::explore::shrink(&g, rule, &opts, args.shrink_runs, args.jobs).await?;
        let file = scenarios::explore::failure_file(&out_root, g.seed);
        std::fs::create_dir_all(file.parent().expect("a file in a directory"))?;
        std::fs::write(
            &file,
            format!(
                "# {rule} fails here for `bad-agent --mode {mode}`: shrunk in {runs} run(s) from seed {}.\n{}",
                g.seed,
                small.render()
            ),
        )?;
        let scenario = Scenario::load(&file)?;
        let again = scenarios::run_and_judge(&scenario, &opts, String::new()).await;
        return Ok(Some(Finding {
            seed: g.seed,
            ran,
            file,
            replayed: has_rule(&again, rule),
        }));
    }
    Ok(None)
}

async fn run() -> Result<bool> {
    let args = Args::parse();
    let bad_agent = std::env::current_exe()?.with_file_name("bad-agent");
    if !bad_agent.exists() {
        bail!(
            "bad-agent is not built beside this binary ({}): `cargo build -p tests --bins`",
            bad_agent.display()
        );
    }
    let modes: Vec<(&str, &str)> = MODES
        .iter()
        .filter(|(m, _)| args.modes.is_empty() || args.modes.iter().any(|x| x == m))
        .copied()
        .collect();
    if modes.is_empty() {
        let names: Vec<&str> = MODES.iter().map(|(m, _)| *m).collect();
        bail!("no such mode in --modes; there are: {}", names.join(", "));
    }
    println!(
        "{:<22} {:<15} {:>10} {:>6}  shrunk file (replayed)",
        "mode", "rule", "first seed", "ran"
    );
    // Modes are proven concurrently, a few at a time; the table keeps their order.
    let args = std::sync::Arc::new(args);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(args.modes_at_once.max(1)));
    let mut proofs = Vec::new();
    for &(mode, rule) in &modes {
        let (args, bad_agent, gate) = (args.clone(), bad_agent.clone(), gate.clone());
        proofs.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            prove(&args, &bad_agent, mode, rule).await
        }));
    }
    let mut all = true;
    for ((mode, rule), proof) in modes.into_iter().zip(proofs) {
        match proof.await.context("a proof task panicked")?? {
            Some(f) => {
                all &= f.replayed;
                println!(
                    "{mode:<22} {rule:<15} {:>10} {:>6}  {} ({})",
                    f.seed,
                    f.ran,
                    f.file.display(),
                    if f.replayed {
                        "fails again"
                    } else {
                        "DID NOT FAIL AGAIN"
                    }
                );
            }
            None => {
                all = false;
                println!(
                    "{mode:<22} {rule:<15} {:>10} {:>6}  NOT FOUND in seeds {}..{}",
                    "-",
                    args.seeds,
                    args.from,
                    args.from + args.seeds - 1
                );
            }
        }
    }
    Ok(all)
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
