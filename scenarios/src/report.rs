//! Reports: `report.json` and `timeline.txt` per scenario; the summary table, JSON and JUnit XML per run.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::run::RunOutcome;
use crate::scenario::{Scenario, Tier};
use crate::verdict::Verdict;

/// A scenario's result word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioResult {
    /// Every expectation held, and the run tested the scenario's premise.
    Pass,
    /// An expectation did not hold.
    Fail,
    /// Every expectation held, but the run did not test what the scenario is about (a step that never
    /// ran while work was outstanding, work shorter than its `[premise]`): it proves nothing either way.
    Inconclusive,
}

impl ScenarioResult {
    /// The word in the summary table and the per-scenario lines.
    pub fn word(self) -> &'static str {
        match self {
            ScenarioResult::Pass => "pass",
            ScenarioResult::Fail => "FAIL",
            ScenarioResult::Inconclusive => "inconclusive",
        }
    }
}

/// One scenario's result, as written to `report.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// What it proves.
    pub summary: String,
    /// Its tier.
    pub tier: Tier,
    /// The seed it ran with.
    pub seed: u64,
    /// `pass`, `fail` or `inconclusive`.
    pub result: ScenarioResult,
    /// Whether it passed (every expectation held and the premise was tested).
    pub passed: bool,
    /// Real milliseconds it took.
    pub real_ms: u64,
    /// Simulated time covered.
    pub simulated: String,
    /// Simulated seconds per real second.
    pub speedup: f64,
    /// The verdicts.
    pub verdict: Verdict,
    /// Per replica, the most calls per second refused by throttling over any 5 s window (AG-BACKOFF).
    pub throttled_calls_per_second: std::collections::BTreeMap<String, f64>,
    /// The command that replays it.
    pub replay: String,
    /// Where its files are.
    pub dir: String,
    /// The agent's peak memory (`VmHWM` of its largest process, bytes) at the end of the run, when a
    /// replica was still running and `/proc` could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_peak_rss_bytes: Option<u64>,
}

impl ScenarioReport {
    /// Builds the report of a judged run.
    pub fn new(scenario: &Scenario, run: &RunOutcome, verdict: Verdict, replay: String) -> Self {
        let simulated = run.world.sim.clock.elapsed();
        let result = if !verdict.passed {
            ScenarioResult::Fail
        } else if !verdict.inconclusive.is_empty() {
            ScenarioResult::Inconclusive
        } else {
            ScenarioResult::Pass
        };
        ScenarioReport {
            name: scenario.name.clone(),
            summary: scenario.summary.clone(),
            tier: scenario.tier,
            seed: run.seed,
            result,
            passed: result == ScenarioResult::Pass,
            real_ms: run.real.as_millis() as u64,
            simulated: sim_core::format_offset(simulated),
            speedup: simulated.as_secs_f64() / run.real.as_secs_f64().max(1e-3),
            verdict,
            throttled_calls_per_second: crate::verdict::throttled_rates(&run.events),
            replay,
            dir: run.out_dir.display().to_string(),
            agent_peak_rss_bytes: run.agent_peak_rss_kib.map(|k| k * 1024),
        }
    }

    /// A failed report for a scenario that could not run at all.
    pub fn broken(scenario: &Scenario, error: String, replay: String, real: Duration) -> Self {
        ScenarioReport {
            name: scenario.name.clone(),
            summary: scenario.summary.clone(),
            tier: scenario.tier,
            seed: scenario.seed,
            result: ScenarioResult::Fail,
            passed: false,
            real_ms: real.as_millis() as u64,
            simulated: "+00:00:00".into(),
            speedup: 0.0,
            verdict: Verdict {
                violations: Vec::new(),
                warnings: Vec::new(),
                executions: Vec::new(),
                checks: vec![crate::verdict::Check {
                    expected: "the scenario runs".into(),
                    passed: false,
                    actual: error,
                }],
                passed: false,
                inconclusive: Vec::new(),
            },
            throttled_calls_per_second: Default::default(),
            replay,
            dir: String::new(),
            agent_peak_rss_bytes: None,
        }
    }

    /// Whether the agent died during the run (AG-START, AG-EXITED): its `agent.log` says why.
    pub fn agent_died(&self) -> bool {
        self.verdict
            .violations
            .iter()
            .any(|v| matches!(v.rule, sim_core::Rule::AgStart | sim_core::Rule::AgExited))
    }

    /// The unmet expectations, one per line.
    pub fn failures(&self) -> Vec<String> {
        self.verdict
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("expected {}; got {}", c.expected, c.actual))
            .collect()
    }
}

/// Writes `report.json` and `timeline.txt` into the scenario's directory.
pub fn write_scenario_files(dir: &Path, report: &ScenarioReport, timeline: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )
    .context("write report.json")?;
    std::fs::write(dir.join("timeline.txt"), timeline).context("write timeline.txt")?;
    Ok(())
}

/// The summary table printed at the end of a run.
pub fn summary_table(reports: &[ScenarioReport]) -> String {
    let mut out = format!(
        "{:<28} {:<9} {:<12} {:>9} {:>11} {:>10}\n",
        "scenario", "tier", "result", "real", "simulated", "speed-up"
    );
    for r in reports {
        out.push_str(&format!(
            "{:<28} {:<9} {:<12} {:>8.2}s {:>11} {:>9.0}x\n",
            r.name,
            format!("{:?}", r.tier).to_lowercase(),
            r.result.word(),
            r.real_ms as f64 / 1000.0,
            r.simulated,
            r.speedup
        ));
    }
    let count = |x: ScenarioResult| reports.iter().filter(|r| r.result == x).count();
    out.push_str(&format!(
        "{} passed, {} failed, {} inconclusive\n",
        count(ScenarioResult::Pass),
        count(ScenarioResult::Fail),
        count(ScenarioResult::Inconclusive)
    ));
    // What a build moves is the agent's memory to watch (large-artifact).
    for r in reports.iter().filter(|r| r.tier == Tier::Artifacts) {
        if let Some(b) = r.agent_peak_rss_bytes {
            out.push_str(&format!(
                "{}: the agent's peak memory was {:.1} MiB\n",
                r.name,
                b as f64 / (1024.0 * 1024.0)
            ));
        }
    }
    if reports.iter().any(|r| r.agent_died()) {
        out.push_str(
            "the agent died in a scenario (AG-START, AG-EXITED): its agent.log says why\n",
        );
    }
    out
}

/// JUnit XML for CI: one test case per scenario.
pub fn junit(reports: &[ScenarioReport]) -> Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("conformance");
    let mut suite = TestSuite::new("conformance");
    for r in reports {
        let status = if r.result == ScenarioResult::Pass {
            TestCaseStatus::success()
        } else if r.result == ScenarioResult::Inconclusive {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!(
                "inconclusive: {}",
                r.verdict.inconclusive.join("; ")
            ));
            s.set_description(format!("replay: {}\nfiles: {}", r.replay, r.dir));
            s
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(r.failures().join("\n"));
            s.set_description(format!("replay: {}\nfiles: {}", r.replay, r.dir));
            s
        };
        let mut case = TestCase::new(r.name.clone(), status);
        case.set_time(Duration::from_millis(r.real_ms));
        case.set_classname(format!("conformance.{:?}", r.tier).to_lowercase());
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}
