//! `sim`: both fakes in one process on one clock, on fixed loopback ports, for a person and their own
//! agent. The fake CodePipeline serves the console at `/`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use fake_apica::{ApicaConfig, FakeApica, Preset};
use fake_codepipeline::{ActionTypeSpec, FakeCodePipeline, JobStatus, Settings, TimingOverrides};
use scenarios::Scenario;
use scenarios::scenario::{Step, StepAction};
use scenarios::world::{API_TOKEN, Overrides, PARK_POLLS, World, add_backend_fault, replica_key};
use serde_json::json;
use sim_core::{ClockMode, NewEvent, Severity, Sim, SimTime, format_duration, format_offset};
use tokio::sync::watch;

/// Start a fake CodePipeline (with the console) and a fake Apica backend on one simulated clock, and
/// print the environment that points your own agent at them.
///
/// CodePipeline listens on 127.0.0.1:P (console at http://127.0.0.1:P/), the backend on 127.0.0.1:P+1.
/// Without --scenario it registers the demo action types `Test/ThirdParty/ApicaLoadtest/1` and
/// `Test/Custom/ApicaLoadtest/1` and the demo pipelines; start a run from the console. With --scenario
/// it plays that scenario's world and steps its manual clock while you watch (your agent replaces the
/// scenario's: its agent steps are skipped, its fault and execution steps applied, timed or on events).
#[derive(Parser, Debug)]
#[command(name = "sim", version)]
struct Args {
    /// Simulated clock: `scaled:N` (N x real time; default `scaled:60`; the console pauses it and changes
    /// its speed) or `manual` (moves only from the
    /// console or POST /_sim/clock). A --scenario always runs on a manual clock.
    #[arg(long)]
    clock: Option<ClockMode>,

    /// A built-in scenario name (`two-hour-test`) or a scenario file to play.
    #[arg(long)]
    scenario: Option<String>,

    /// CodePipeline on 127.0.0.1:P, the backend on P+1.
    #[arg(long, default_value_t = 8080, env = "SIM_PORT_BASE")]
    port_base: u16,

    /// Where the client tokens file and `env.sh` are written.
    #[arg(long, default_value = "target/sim")]
    out: PathBuf,

    /// Demo world: the job timeout of the demo action types (simulated time).
    #[arg(long, default_value = "1h", value_parser = duration)]
    job_timeout: Duration,

    /// --scenario: real time between two clock steps, so a person can follow.
    #[arg(long, default_value = "300ms", value_parser = duration)]
    step_delay: Duration,

    /// --scenario: how long (real) a job may wait for your agent before the clock moves on without it.
    #[arg(long, default_value = "5s", value_parser = duration)]
    answer_budget: Duration,

    /// Seed for job ids and nonces (default: the scenario's, or 0).
    #[arg(long)]
    seed: Option<u64>,

    /// Log format (logs go to stderr; the environment to export goes to stdout).
    #[arg(long, default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
}

fn duration(s: &str) -> Result<Duration, String> {
    sim_core::parse_duration(s)
}

/// The default speed-up: an hour-long job timeout lasts a minute of real time.
const DEFAULT_CLOCK: ClockMode = ClockMode::Scaled(60.0);
/// Access keys the demo world accepts, one per agent replica you may start.
const DEMO_KEYS: usize = 4;
/// The demo third-party client.
const DEMO_CLIENT_ID: &str = "6f1c2a9e-0000-4000-8000-00000000d3e0";
const DEMO_CLIENT_TOKEN: &str = "sim-client-token-1";
const DEMO_API_TOKEN: &str = "apica-token-sim";
const THIRD_PARTY: &str = "Test/ThirdParty/ApicaLoadtest/1";
const CUSTOM: &str = "Test/Custom/ApicaLoadtest/1";
/// How often the poll-gap watcher looks.
const GAP_CHECK: Duration = Duration::from_secs(1);

fn demo_key(n: usize) -> (String, String) {
    (
        format!("AKIDSIMAGENT{n:02}"),
        format!("sim-agent-secret-{n:02}"),
    )
}

/// What is hosted, and what an agent needs to know about it.
struct Hosted {
    sim: Sim,
    cp: FakeCodePipeline,
    apica: FakeApica,
    action_type: String,
    other_action_type: Option<String>,
    clients: BTreeMap<String, String>,
    keys: Vec<(String, String)>,
    api_token: String,
    query_param: Option<String>,
    pipelines: Vec<String>,
    scenario: Option<(Scenario, World)>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    }
    let cp_port = args.port_base;
    let apica_port = args.port_base.checked_add(1).ok_or_else(|| {
        anyhow!(
            "--port-base {} leaves no port for the backend (P+1)",
            args.port_base
        )
    })?;
    let cp_listener = bind(cp_port, "the fake CodePipeline").await?;
    let apica_listener = bind(apica_port, "the fake backend").await?;
    let cp_url = format!("http://127.0.0.1:{cp_port}");
    let apica_url = format!("http://127.0.0.1:{apica_port}");

    let mut hosted = match &args.scenario {
        Some(name) => {
            if let Some(mode) = args.clock
                && mode != ClockMode::Manual
            {
                bail!(
                    "--clock {mode} with --scenario: a scenario runs on a manual clock that sim steps for you; drop --clock"
                );
            }
            host_scenario(name, args.seed).await?
        }
        None => host_demo(&args, &apica_url)?,
    };
    let mode = hosted.sim.clock.mode();
    let _driver = hosted.sim.clock.spawn_driver();

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = Vec::new();
    for (listener, router) in [
        (cp_listener, hosted.cp.router()),
        (apica_listener, hosted.apica.router()),
    ] {
        let mut rx = stop_rx.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }

    let out = absolute(&args.out)?;
    let env = agent_env(&hosted, &cp_url, &apica_url, &out, mode)?;
    print_banner(&hosted, &cp_url, &apica_url, &out, mode, &env);

    if matches!(mode, ClockMode::Scaled(_)) {
        tokio::spawn(watch_poll_gaps(hosted.cp.clone(), stop_rx.clone()));
    }
    let stepper = hosted.scenario.take().map(|(scenario, world)| {
        let (steps, triggered) = world_steps(&scenario);
        // Like the runner's listeners, triggers count the events after the world has started.
        let seen_seq = world.sim.events.last_seq();
        let stepper = Stepper {
            world,
            steps,
            triggered,
            seen_seq,
            step_delay: args.step_delay,
            answer_budget: args.answer_budget,
            waiting: HashMap::new(),
        };
        tokio::spawn(stepper.run(stop_rx.clone()))
    });

    sim_core::shutdown_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    if let Some(s) = stepper
        && let Ok(Some(mut world)) = s.await
    {
        world.stop();
    }
    // The console's long polls end within a second of the signal; don't wait for ever on a stuck one.
    for server in servers {
        match tokio::time::timeout(Duration::from_secs(2), server).await {
            Ok(Ok(Err(e))) => tracing::warn!("server stopped with an error: {e}"),
            Ok(_) => {}
            Err(_) => tracing::warn!("a connection was still open after 2 s; closing it"),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn bind(port: u16, what: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("cannot listen on 127.0.0.1:{port} for {what}: is another sim running? Pick other ports with --port-base")
        })
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .context("the current directory")?
            .join(p)
    })
}

/// The demo world: two Apica action types, three presets, four pipelines.
fn host_demo(args: &Args, apica_url: &str) -> Result<Hosted> {
    let mode = args.clock.unwrap_or(DEFAULT_CLOCK);
    if mode == ClockMode::Real {
        bail!("--clock real would make a two-hour test take two hours: use `scaled:N` or `manual`");
    }
    let sim = Sim::new(mode);
    let seed = args.seed.unwrap_or(0);
    let mut settings = Settings {
        seed,
        park_polls: (mode == ClockMode::Manual).then_some(PARK_POLLS),
        ..Settings::default()
    };
    let keys: Vec<(String, String)> = (1..=DEMO_KEYS).map(demo_key).collect();
    for (k, s) in &keys {
        settings.access_keys.insert(k.clone(), s.clone());
    }
    let cp = FakeCodePipeline::new(sim.clone(), settings);

    let presets = [
        Preset::passed("short", Duration::from_secs(5 * 60)),
        Preset::passed("two-hours", Duration::from_secs(2 * 3600)),
        Preset::failed(
            "failing",
            Duration::from_secs(20 * 60),
            "p95 response time 2.4 s is above the 1 s threshold",
        ),
    ];
    let mut config = ApicaConfig::new(DEMO_API_TOKEN, presets).with_seed(seed);
    config.public_url = Some(apica_url.to_string());
    let apica = FakeApica::new(sim.clone(), config);

    let props = serde_json::to_value(scenarios::world::apica_properties())?;
    let properties = fake_codepipeline::pipelines::parse_properties(Some(&props))
        .map_err(|e| anyhow!("Apica properties: {e}"))?;
    let timing = TimingOverrides {
        job_timeout: Some(format_duration(args.job_timeout)),
        ..TimingOverrides::default()
    };
    for (id, clients) in [
        (
            THIRD_PARTY,
            HashMap::from([(DEMO_CLIENT_ID.to_string(), DEMO_CLIENT_TOKEN.to_string())]),
        ),
        (CUSTOM, HashMap::new()),
    ] {
        cp.core()
            .register_action_type(ActionTypeSpec {
                id: Some(id.parse().map_err(|e| anyhow!("{id}: {e}"))?),
                settings: json!({
                    "executionUrlTemplate": format!("{apica_url}/jobs/{{ExternalExecutionId}}"),
                    "entityUrlTemplate": format!("{apica_url}/jobs"),
                }),
                properties: properties.clone(),
                input_artifacts: serde_json::Value::Null,
                output_artifacts: serde_json::Value::Null,
                clients,
                timing: timing.clone(),
            })
            .map_err(|e| anyhow!("registering {id}: {e}"))?;
    }
    let pipelines = [
        ("demo", THIRD_PARTY, "short"),
        ("demo-two-hours", THIRD_PARTY, "two-hours"),
        ("demo-failing", THIRD_PARTY, "failing"),
        ("demo-custom", CUSTOM, "short"),
    ];
    for (name, ty, preset) in pipelines {
        let t: fake_codepipeline::ActionTypeId = ty.parse().map_err(|e| anyhow!("{ty}: {e}"))?;
        cp.core()
            .create_pipeline(&json!({"pipeline": {
                "name": name,
                "roleArn": "arn:aws:iam::123456789012:role/sim",
                "artifactStore": {"type": "S3", "location": "sim-artifacts"},
                "stages": [
                    {"name": "Source", "actions": [{
                        "name": "Source", "runOrder": 1,
                        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                        "configuration": {"S3Bucket": "sim-artifacts", "S3ObjectKey": "app.zip"},
                    }]},
                    {"name": "LoadTest", "actions": [{
                        "name": "ApicaLoadtest", "runOrder": 1,
                        "actionTypeId": t.to_json(),
                        "configuration": {"PresetName": preset, "RunnableFile": format!("{name}.jmx")},
                    }]},
                ],
            }}))
            .map_err(|e| anyhow!("creating pipeline {name}: {e}"))?;
    }
    Ok(Hosted {
        sim,
        cp,
        apica,
        action_type: THIRD_PARTY.into(),
        other_action_type: Some(CUSTOM.into()),
        clients: BTreeMap::from([(DEMO_CLIENT_ID.to_string(), DEMO_CLIENT_TOKEN.to_string())]),
        keys,
        api_token: DEMO_API_TOKEN.into(),
        query_param: None,
        pipelines: pipelines
            .iter()
            .map(|(name, ty, preset)| {
                format!(
                    "{name} ({preset}, {})",
                    if *ty == CUSTOM {
                        "Custom"
                    } else {
                        "ThirdParty"
                    }
                )
            })
            .collect(),
        scenario: None,
    })
}

/// A scenario's world, as the conformance runner would host it.
async fn host_scenario(name: &str, seed: Option<u64>) -> Result<Hosted> {
    let path = if name.ends_with(".toml") || Path::new(name).exists() {
        PathBuf::from(name)
    } else {
        scenarios::builtin_dir().join(format!("{name}.toml"))
    };
    if !path.exists() {
        bail!(
            "no scenario `{name}`: give a built-in name (see `cargo xtask conformance --list`) or a .toml file"
        );
    }
    let scenario = Scenario::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let seed = seed.unwrap_or(scenario.seed);
    let world = World::start(&scenario, seed, &Overrides::default())
        .await
        .with_context(|| format!("starting the world of {}", scenario.name))?;
    let keys = (1..=DEMO_KEYS).map(|n| replica_key(n, seed)).collect();
    Ok(Hosted {
        sim: world.sim.clone(),
        cp: world.cp.clone(),
        apica: world.apica.clone(),
        action_type: world.action_type.to_string(),
        other_action_type: None,
        clients: world.agent_clients.clone(),
        keys,
        api_token: API_TOKEN.into(),
        query_param: world.query_param.clone(),
        pipelines: world
            .executions
            .iter()
            .map(|e| format!("sim-{} ({})", e.label, e.preset.as_deref().unwrap_or("-")))
            .collect(),
        scenario: Some((scenario, world)),
    })
}

/// The contract environment of DESIGN.md for the first access key; writes the client tokens file and
/// `env.sh` into `out`.
fn agent_env(
    h: &Hosted,
    cp_url: &str,
    apica_url: &str,
    out: &Path,
    mode: ClockMode,
) -> Result<Vec<(String, String)>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tokens = out.join("client-tokens.json");
    std::fs::write(&tokens, serde_json::to_string_pretty(&h.clients)?)
        .with_context(|| format!("writing {}", tokens.display()))?;
    let (key, secret) = h.keys.first().cloned().unwrap_or_default();
    let job_timeout = h.cp.core().settings.timing.job_timeout.min(
        h.cp.core()
            .with_world(|w| w.action_types.values().map(|t| t.timing.job_timeout).min())
            .unwrap_or(Duration::MAX),
    );
    // A poll gap of 1/20 of the job timeout in simulated time keeps far from an invented timeout.
    let poll_ms = match mode {
        ClockMode::Scaled(n) => {
            ((job_timeout.as_secs_f64() * 1000.0 / n / 20.0) as u64).clamp(50, 1000)
        }
        _ => 100,
    };
    let mut env = vec![
        (
            "AWS_ENDPOINT_URL_CODEPIPELINE".to_string(),
            cp_url.to_string(),
        ),
        ("AWS_ENDPOINT_URL".into(), cp_url.to_string()),
        ("AWS_ACCESS_KEY_ID".into(), key),
        ("AWS_SECRET_ACCESS_KEY".into(), secret),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("JOB_ACTION_TYPE".into(), h.action_type.clone()),
    ];
    if h.action_type.contains("/ThirdParty/") {
        env.push((
            "JOB_CLIENT_TOKENS_FILE".into(),
            tokens.display().to_string(),
        ));
    }
    if let Some(q) = &h.query_param {
        env.push(("JOB_QUERY_PARAM".into(), q.clone()));
    }
    env.push(("JOB_POLL_INTERVAL_MS".into(), poll_ms.to_string()));
    env.push(("APICA_API_URL".into(), apica_url.to_string()));
    env.push(("APICA_API_TOKEN".into(), h.api_token.clone()));
    let mut script = String::from(
        "# Generated by `cargo xtask sim`: source it in the shell that starts your agent.\nunset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE\n",
    );
    for (k, v) in &env {
        script.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    let path = out.join("env.sh");
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    Ok(env)
}

fn shell_quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

fn print_banner(
    h: &Hosted,
    cp_url: &str,
    apica_url: &str,
    out: &Path,
    mode: ClockMode,
    env: &[(String, String)],
) {
    let mut s = String::new();
    s.push_str(&format!(
        "\ncodepipeline-job-sim: both fakes on one `{mode}` clock\n  console       {cp_url}/\n  CodePipeline  {cp_url}  (awsJson1.1, SigV4 with the keys below)\n  backend       {apica_url}  (Details pages at /jobs/ID)\n"
    ));
    match &h.scenario {
        Some((scenario, _)) => s.push_str(&format!(
            "  scenario      {} (seed {}): {}\n  executions    {}\n  stepping      the clock moves to the next timer once your agent has polled and nothing waits for it\n",
            scenario.name,
            h.cp.core().settings.seed,
            scenario.summary,
            h.pipelines.join(", ")
        )),
        None => s.push_str(&format!("  pipelines     {}\n", h.pipelines.join(", "))),
    }
    s.push_str(&format!(
        "  access keys   {}\n",
        h.keys
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    if let ClockMode::Scaled(n) = mode {
        s.push_str(&format!(
            "  scaling       1 s real = {} simulated; a poll gap nearing the job timeout is warned about\n",
            format_duration(Duration::from_secs_f64(n).min(Duration::from_secs(86_400)))
        ));
    }
    s.push_str(&format!(
        "\nPoint your agent at it (also in {}):\nunset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE\n",
        out.join("env.sh").display()
    ));
    for (k, v) in env {
        s.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    if let Some(other) = &h.other_action_type {
        s.push_str(&format!(
            "# for the Custom type instead: export JOB_ACTION_TYPE={other}; unset JOB_CLIENT_TOKENS_FILE\n"
        ));
    }
    if h.scenario.is_none() {
        s.push_str(&format!(
            "\nStart a run with the Run button on the console, or:\n  curl -X POST {cp_url}/_sim/console/pipelines/demo-two-hours/start\n"
        ));
    }
    s.push_str("Ctrl-C stops.\n");
    println!("{s}");
}

/// Warns (log, event and console banner) when a caller's real gap between requests, scaled, nears the
/// job timeout: once per gap, again after the caller's next request.
async fn watch_poll_gaps(cp: FakeCodePipeline, mut stop: watch::Receiver<bool>) {
    let mut warned: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(GAP_CHECK) => {}
        }
        let gaps = fake_codepipeline::console::poll_gaps(cp.core());
        let now: HashSet<String> = gaps.iter().map(|g| g.caller.clone()).collect();
        warned.retain(|c| now.contains(c));
        for gap in gaps {
            if warned.insert(gap.caller.clone()) {
                let text = gap.describe();
                tracing::warn!(caller = %gap.caller, "{text}");
                cp.sim().events.record(
                    NewEvent::new("sim", "poll_gap")
                        .replica(gap.caller.clone())
                        .severity(Severity::Warning)
                        .detail(text),
                );
            }
        }
    }
}

/// A step that waits for the `nth` event named `on` (at or after `after`, simulated).
struct Triggered {
    on: String,
    after: Option<Duration>,
    nth: usize,
    seen: usize,
    step: Step,
}

/// The scenario's steps that are the world's (the agent's steps are yours to take): the timed ones in
/// order, and the event-triggered ones.
fn world_steps(scenario: &Scenario) -> (Vec<(Duration, Step)>, Vec<Triggered>) {
    let mut out = Vec::new();
    let mut triggered = Vec::new();
    for step in &scenario.steps {
        let own = matches!(
            step.action,
            StepAction::StartAgent | StepAction::Redeploy | StepAction::Crash
        );
        match (&step.at, own) {
            (_, true) => tracing::info!(
                "scenario step `{:?}` skipped: your agent is started, redeployed and crashed by you",
                step.action
            ),
            (Some(at), false) => match scenarios::world::offset("at", at) {
                Ok(d) => out.push((d, step.clone())),
                Err(e) => tracing::warn!("scenario step `{:?}` skipped: {e:#}", step.action),
            },
            (None, false) => {
                let after = step
                    .after
                    .as_deref()
                    .map(|a| scenarios::scenario::duration("after", a))
                    .transpose();
                match (step.on.clone(), after) {
                    (Some(on), Ok(after)) => triggered.push(Triggered {
                        on,
                        after,
                        nth: step.nth.unwrap_or(1).max(1),
                        seen: 0,
                        step: step.clone(),
                    }),
                    (None, _) => tracing::warn!(
                        "scenario step `{:?}` skipped: it has neither `at` nor `on`",
                        step.action
                    ),
                    (Some(_), Err(e)) => {
                        tracing::warn!("scenario step `{:?}` skipped: {e}", step.action)
                    }
                }
            }
        }
    }
    out.sort_by_key(|(d, _)| *d);
    (out, triggered)
}

/// Steps a scenario's manual clock to the next timer or step once your agent has made a request, no
/// request is in flight, and every job waiting for an agent has waited at least the answer budget.
struct Stepper {
    world: World,
    steps: Vec<(Duration, Step)>,
    // Event-triggered steps still waiting for their event, and the last event looked at.
    triggered: Vec<Triggered>,
    seen_seq: u64,
    step_delay: Duration,
    answer_budget: Duration,
    // Jobs waiting for an agent (queued, dispatched, acknowledged) and since when (real).
    waiting: HashMap<String, Instant>,
}

impl Stepper {
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Option<World> {
        let origin = self.world.sim.clock.origin();
        let mut told_waiting = false;
        let mut told_done = false;
        loop {
            let activity = self.world.sim.activity.clone();
            let changed = activity.notified();
            if *stop.borrow() {
                return Some(self.world);
            }
            self.apply_due_steps();
            self.apply_triggered_steps();
            let done = self.steps.is_empty() && self.world.all_finished();
            if done && !told_done {
                told_done = true;
                tracing::info!(
                    "scenario finished at {}; the world stays up until Ctrl-C",
                    format_offset(self.world.sim.clock.now().since(origin))
                );
            }
            let snap = self.world.sim.activity.snapshot();
            let agent_seen = snap.callers.iter().any(|c| c.requests > 0);
            if !agent_seen && !told_waiting {
                told_waiting = true;
                tracing::info!("waiting for your agent's first request before moving the clock");
            }
            if !done && agent_seen && snap.in_flight == 0 && !self.job_waits() {
                let next_step = self.steps.first().map(|(d, _)| origin.plus(*d));
                let next_timer = self.world.sim.clock.next_deadline().map(|d| d.at);
                let target = match (next_step, next_timer) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(target) = target {
                    // A person watches: let them see each state before the next.
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return Some(self.world),
                        _ = tokio::time::sleep(self.step_delay) => {}
                    }
                    self.step_to(target);
                    continue;
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return Some(self.world),
                _ = changed => {}
                // Re-check now and then: a job's budget runs out without any activity.
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Whether a job has been waiting for an agent for less than the answer budget.
    fn job_waits(&mut self) -> bool {
        let waiting: Vec<String> = self.world.cp.core().with_world(|w| {
            w.jobs
                .values()
                .filter(|j| {
                    matches!(
                        j.status,
                        JobStatus::Queued | JobStatus::Dispatched | JobStatus::InProgress
                    )
                })
                .map(|j| j.id.clone())
                .collect()
        });
        let now = Instant::now();
        self.waiting.retain(|id, _| waiting.contains(id));
        waiting.into_iter().any(|id| {
            now.duration_since(*self.waiting.entry(id).or_insert(now)) < self.answer_budget
        })
    }

    fn step_to(&mut self, target: SimTime) {
        let clock = &self.world.sim.clock;
        let target = target.max(clock.now());
        if let Err(e) = clock.advance_to(target) {
            tracing::warn!("cannot step the clock: {e}");
        }
    }

    fn apply_due_steps(&mut self) {
        let elapsed = self.world.sim.clock.elapsed();
        while self.steps.first().is_some_and(|(d, _)| *d <= elapsed) {
            let (_, step) = self.steps.remove(0);
            if let Err(e) = self.apply(&step) {
                tracing::warn!("scenario step `{:?}` failed: {e:#}", step.action);
            }
        }
    }

    /// Applies each event-triggered step whose event has been logged since the last look.
    fn apply_triggered_steps(&mut self) {
        if self.triggered.is_empty() {
            return;
        }
        let events = self.world.sim.events.since(self.seen_seq, usize::MAX);
        let mut due = Vec::new();
        for e in &events {
            self.seen_seq = e.seq;
            let name = e.name();
            for (i, t) in self.triggered.iter_mut().enumerate() {
                if t.on == name && t.after.is_none_or(|a| Duration::from_millis(e.sim_ms) >= a) {
                    t.seen += 1;
                    if t.seen == t.nth {
                        due.push(i);
                    }
                }
            }
        }
        // In the order their events came (the runner's order), then out of the waiting list.
        let steps: Vec<Step> = due
            .iter()
            .map(|i| self.triggered[*i].step.clone())
            .collect();
        let mut gone = due;
        gone.sort_unstable();
        for i in gone.into_iter().rev() {
            self.triggered.remove(i);
        }
        for step in steps {
            if let Err(e) = self.apply(&step) {
                tracing::warn!("scenario step `{:?}` failed: {e:#}", step.action);
            }
        }
    }

    fn apply(&mut self, step: &Step) -> Result<()> {
        let detail = match step.action {
            StepAction::CpFaults => {
                let rule = step.cp_fault_rule();
                let d = format!("CodePipeline faults: {:?} at rate {}", rule.kind, rule.rate);
                self.world.cp.core().add_fault(rule);
                d
            }
            StepAction::ClearCpFaults => {
                self.world.cp.core().clear_faults();
                "CodePipeline faults cleared".to_string()
            }
            StepAction::BackendFault => {
                let fault = step
                    .fault
                    .clone()
                    .unwrap_or(toml::Value::Table(Default::default()));
                add_backend_fault(&self.world.apica, &fault)?;
                format!("backend fault {fault}")
            }
            StepAction::StartExecutions => {
                self.world
                    .start_executions(&step.executions, &Overrides::default())?;
                format!("started {} more execution(s)", step.executions.len())
            }
            StepAction::StartAgent | StepAction::Redeploy | StepAction::Crash => return Ok(()),
        };
        tracing::info!("scenario step: {detail}");
        self.world
            .sim
            .events
            .record(NewEvent::new("sim", "step").detail(detail));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
name = "triggered"
summary = "A fault set by the second job queued, cleared by the third."

[action_type]
id = "Test/Custom/ApicaLoadtest/1"

[[backend.presets]]
name = "short"
duration = "5m"
outcome = "passed"

[[executions]]
id = "e-1"
configuration = { PresetName = "short", RunnableFile = "e.jmx" }

[[steps]]
at = "0s"
do = "start-agent"

[[steps]]
at = "1m"
do = "start-executions"
executions = [
  { id = "e-2", configuration = { PresetName = "short", RunnableFile = "e.jmx" } },
  { id = "e-3", configuration = { PresetName = "short", RunnableFile = "e.jmx" } },
]

[[steps]]
on = "cp.job_queued"
do = "cp-faults"
operation = "PollForJobs"
rate = 1.0

[[steps]]
on = "cp.job_queued"
nth = 2
do = "clear-cp-faults"

[[steps]]
on = "cp.job_queued"
nth = 3
do = "cp-faults"
operation = "AcknowledgeJob"
rate = 1.0
"#;

    #[tokio::test]
    async fn event_triggered_world_steps_apply_in_event_order_counting_from_the_start() {
        let scenario = Scenario::parse(SCENARIO, Path::new("triggered.toml")).unwrap();
        let (timed, triggered) = world_steps(&scenario);
        assert_eq!(timed.len(), 1, "start-agent is yours, not sim's");
        assert_eq!(triggered.len(), 3);
        let world = World::start(&scenario, 1, &Overrides::default())
            .await
            .unwrap();
        let seen_seq = world.sim.events.last_seq();
        let mut stepper = Stepper {
            world,
            steps: timed,
            triggered,
            seen_seq,
            step_delay: Duration::ZERO,
            answer_budget: Duration::from_secs(5),
            waiting: HashMap::new(),
        };
        let faults = |s: &Stepper| {
            s.world.cp.core().with_world(|w| {
                w.faults
                    .iter()
                    .map(|f| f.operation.clone())
                    .collect::<Vec<_>>()
            })
        };
        // e-1's job, queued as the world started, is not counted (nor is it by the runner).
        stepper.apply_triggered_steps();
        assert!(faults(&stepper).is_empty());
        assert_eq!(stepper.triggered.len(), 3);
        // Two jobs queued in one step: the fault, then the clearing, in the order of their events.
        stepper.step_to(
            stepper
                .world
                .sim
                .clock
                .origin()
                .plus(Duration::from_secs(60)),
        );
        stepper.apply_due_steps();
        stepper.apply_triggered_steps();
        assert!(
            faults(&stepper).is_empty(),
            "set, then cleared: {:?}",
            faults(&stepper)
        );
        assert_eq!(stepper.triggered.len(), 1, "the third job is still to come");
        stepper.apply_triggered_steps();
        assert!(faults(&stepper).is_empty(), "an event does not count twice");
        stepper.world.stop();
    }
}
