//! The scenario runner: loads scenario files, hosts both fakes on one manual clock, runs the agent under
//! test as real processes, steps the clock by the rule of `docs/design.md` (one [`driver`] for
//! `conformance` and `sim`), and judges the run by the rule ids of `docs/protocol.md`.

pub mod cli;
pub mod driver;
pub mod env;
pub mod explore;
pub mod replica;
pub mod report;
pub mod run;
pub mod scenario;
pub mod timeline;
pub mod verdict;
pub mod world;

use std::path::{Path, PathBuf};

pub use report::{ScenarioReport, ScenarioResult};
pub use run::{RunOptions, run};
pub use scenario::Scenario;

/// Runs a binary's `main` on a multi-threaded runtime. A user's mistake (a scenario typo, a bad flag value)
/// is printed as one message with its causes, never a stack trace, whatever `RUST_BACKTRACE` says.
pub fn main_with(
    run: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The built-in scenarios' directory in the source tree (`scenarios/scenarios/`). The binaries do not read
/// it: they carry the files (see [`builtin`]).
pub fn builtin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// The built-in scenarios as compiled into this crate: `(name, file text)`, sorted by name. An installed
/// `conformance` runs them from any directory.
pub fn builtin() -> &'static [(&'static str, &'static str)] {
    embedded::BUILTIN
}

/// Loads the built-in scenario `name`; its errors name it `builtin:NAME.toml`.
pub fn load_builtin(name: &str) -> Option<Result<Scenario, scenario::ScenarioError>> {
    let (_, text) = builtin().iter().find(|(n, _)| *n == name)?;
    Some(Scenario::parse(
        text,
        Path::new(&format!("builtin:{name}.toml")),
    ))
}

/// Runs one scenario and judges it; writes its files. Never fails: a scenario that cannot run is a failed
/// report that says why.
pub async fn run_and_judge(
    scenario: &Scenario,
    opts: &RunOptions,
    replay: String,
) -> ScenarioReport {
    let started = std::time::Instant::now();
    match run::run(scenario, opts).await {
        Ok(outcome) => {
            let verdict = verdict::judge(scenario, &outcome);
            let report = ScenarioReport::new(scenario, &outcome, verdict, replay);
            let timeline = timeline::render(&outcome.events);
            let events: String = outcome
                .events
                .iter()
                .filter_map(|e| serde_json::to_string(e).ok())
                .map(|l| l + "\n")
                .collect();
            if let Err(e) = std::fs::write(outcome.out_dir.join("events.jsonl"), events) {
                tracing::warn!("cannot write the events of {}: {e}", scenario.name);
            }
            if let Err(e) = report::write_scenario_files(&outcome.out_dir, &report, &timeline) {
                tracing::warn!("cannot write the files of {}: {e}", scenario.name);
            }
            report
        }
        Err(e) => ScenarioReport::broken(scenario, format!("{e:#}"), replay, started.elapsed()),
    }
}
