//! `sim`: both fakes in one process on one clock, on fixed loopback ports, for a person and their own
//! agent. The fake CodePipeline serves the console at `/`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use fake_apica::{ApicaConfig, FakeApica, Preset};
use fake_codepipeline::{ActionTypeSpec, FakeCodePipeline, Settings, TimingOverrides};
use scenarios::Scenario;
use scenarios::env::AgentEnv;
use scenarios::world::{API_TOKEN, Overrides, PARK_POLLS, World, replica_key};
use serde_json::json;
use sim_core::{ClockMode, NewEvent, Severity, Sim, format_duration};
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
    action_type: fake_codepipeline::ActionTypeId,
    other_action_type: Option<String>,
    clients: BTreeMap<String, String>,
    keys: Vec<(String, String)>,
    api_token: String,
    query_param: Option<String>,
    pipelines: Vec<String>,
    scenario: Option<(Scenario, World)>,
}

fn main() -> std::process::ExitCode {
    scenarios::main_with(run())
}

async fn run() -> Result<()> {
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
            let stop = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            sim_core::serve::serve(listener, router, Default::default(), stop).await
        }));
    }

    let out = absolute(&args.out)?;
    let env = agent_env(&hosted, &cp_url, &apica_url, &out, mode)?;
    print_banner(&hosted, &cp_url, &apica_url, &out, mode, &env);

    if matches!(mode, ClockMode::Scaled(_)) {
        tokio::spawn(watch_poll_gaps(hosted.cp.clone(), stop_rx.clone()));
    }
    let seed = hosted.cp.core().settings.seed;
    let stepper = hosted.scenario.take().map(|(scenario, mut world)| {
        let (budget, delay, stop) = (args.answer_budget, args.step_delay, stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) =
                scenarios::driver::play(&scenario, &mut world, seed, budget, delay, stop).await
            {
                tracing::warn!("the scenario stopped: {e:#}");
            }
            world
        })
    });

    sim_core::shutdown_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    if let Some(s) = stepper
        && let Ok(mut world) = s.await
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
    // The demo pipelines' Source action reads this object, as on AWS (docs/artifacts.md): it is uploaded
    // before any pipeline runs.
    let source = scenarios::world::source_zip(&Default::default(), seed)?;
    cp.core().store.put(
        "sim-artifacts",
        "app.zip",
        fake_codepipeline::store::Object::new(source.into(), sim.clock.now()),
    );
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
                        "outputArtifacts": [{"name": "SourceArtifact"}],
                    }]},
                    {"name": "LoadTest", "actions": [{
                        "name": "ApicaLoadtest", "runOrder": 1,
                        "actionTypeId": t.to_json(),
                        "inputArtifacts": [{"name": "SourceArtifact"}],
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
        action_type: THIRD_PARTY
            .parse()
            .map_err(|e| anyhow!("{THIRD_PARTY}: {e}"))?,
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
        action_type: world.action_type.clone(),
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

/// The contract environment of `docs/design.md` for the first access key; writes the client tokens file and
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
            .inspect(|w| w.action_types().map(|t| t.timing.job_timeout).min())
            .unwrap_or(Duration::MAX),
    );
    // A poll gap of 1/20 of the job timeout in simulated time keeps far from an invented timeout.
    let poll_ms = match mode {
        ClockMode::Scaled(n) => {
            ((job_timeout.as_secs_f64() * 1000.0 / n / 20.0) as u64).clamp(50, 1000)
        }
        _ => 100,
    };
    let env = AgentEnv {
        cp_url: cp_url.to_string(),
        apica_url: apica_url.to_string(),
        api_token: h.api_token.clone(),
        action_type: h.action_type.clone(),
        clients_file: tokens,
        query_param: h.query_param.clone(),
        poll_interval_ms: poll_ms,
    }
    .vars(&key, &secret);
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
                    NewEvent::new(sim_core::Source::Sim, sim_core::EventKind::PollGap)
                        .replica(gap.caller.clone())
                        .severity(Severity::Warning)
                        .detail(text),
                );
            }
        }
    }
}
