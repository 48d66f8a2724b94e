//! `fake-apica`: the fake load-test backend as a standalone server.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use fake_apica::{ApicaConfig, DEFAULT_FIRST_JOB_ID, FakeApica, Preset, load_presets_file};
use sim_core::{ClockMode, Sim};
use tracing_subscriber::EnvFilter;

/// A fake Apica-style load-test backend whose tests run on a simulated clock.
///
/// Tests are created from presets (name -> duration and outcome) and finish when their duration has
/// passed in simulated time. Faults and presets are scripted through the admin API under /_sim/.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Address to listen on (port 0 picks a free one; the log says which).
    #[arg(long, env = "APICA_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,

    /// How simulated time moves: `manual` (only through POST /_sim/clock), `scaled:N` (N x real time)
    /// or `real`.
    #[arg(long, env = "APICA_CLOCK", default_value = "real")]
    clock: ClockMode,

    /// A bearer token the API accepts; repeat it (or separate with commas in APICA_API_TOKEN) to
    /// accept several.
    #[arg(
        long = "token",
        env = "APICA_API_TOKEN",
        value_delimiter = ',',
        required = true,
        hide_env_values = true
    )]
    tokens: Vec<String>,

    /// A preset, `NAME=DURATION:passed` or `NAME=DURATION:failed:REASON` (e.g. `soak=6h:passed`,
    /// `spike=10m:failed:p95 2300 ms > 2000 ms`); repeatable.
    #[arg(long = "preset", value_name = "PRESET")]
    presets: Vec<Preset>,

    /// A presets file: TOML with `[[presets]]` tables (name, duration, outcome, reason), or JSON when
    /// the name ends in `.json`.
    #[arg(long, env = "APICA_PRESETS_FILE")]
    presets_file: Option<PathBuf>,

    /// Seed of every random choice (the error_rate fault), so runs repeat.
    #[arg(long, env = "APICA_SEED", default_value_t = 0)]
    seed: u64,

    /// The first test's job id; later tests count up from it.
    #[arg(long, default_value_t = DEFAULT_FIRST_JOB_ID)]
    first_job_id: u64,

    /// Base URL of the details links (default: `http://` and the address it listens on; never the
    /// request's Host header, which a client chooses).
    #[arg(long, env = "APICA_PUBLIC_URL")]
    public_url: Option<String>,

    /// Tests one API token may create (then 429 TestQuotaExceeded); every test is kept in memory.
    #[arg(long, default_value_t = fake_apica::DEFAULT_MAX_TESTS_PER_TOKEN)]
    max_tests_per_token: usize,

    /// Require this token on the admin API (`/_sim/`): `Authorization: Bearer TOKEN` or
    /// `X-Sim-Admin-Token: TOKEN`. For a shared host; it also lifts the Host check.
    #[arg(long, env = "APICA_ADMIN_TOKEN")]
    admin_token: Option<String>,

    /// A host name the admin API answers besides loopback names and the listen address (it refuses other
    /// `Host`s, against DNS rebinding); repeatable.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr, colour only on a terminal, so stdout stays free and captured logs stay clean.
    let ansi = std::io::stderr().is_terminal();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Human => logs.with_ansi(ansi).init(),
        LogFormat::Json => logs.json().init(),
    }

    let mut presets = Vec::new();
    if let Some(path) = &cli.presets_file {
        presets.extend(load_presets_file(path)?);
    }
    // Command-line presets come last, so they override a file's preset of the same name.
    presets.extend(cli.presets);
    let tokens: Vec<String> = cli
        .tokens
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        bail!("no API token: pass --token TOKEN or set APICA_API_TOKEN");
    }
    if presets.is_empty() {
        tracing::warn!(
            "no presets: every create request will be refused until one is added (POST /_sim/presets)"
        );
    }

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let public_url = cli
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let sim = Sim::new(cli.clock);
    let config = ApicaConfig {
        tokens,
        presets,
        seed: cli.seed,
        first_job_id: cli.first_job_id,
        public_url: Some(public_url),
        max_tests_per_token: cli.max_tests_per_token,
        admin: cli.allowed_hosts.iter().fold(
            sim_core::AdminGuard::new()
                .with_token(cli.admin_token.clone())
                .allow_host(&cli.listen.ip().to_string()),
            |g, h| g.allow_host(h),
        ),
        ..Default::default()
    };
    let apica = FakeApica::new(sim.clone(), config);
    let _driver = sim.clock.spawn_driver();

    let names: Vec<String> = apica.presets().iter().map(ToString::to_string).collect();
    tracing::info!(%addr, clock = %cli.clock, presets = %names.join(" "), "fake-apica listening on http://{addr}");
    apica
        .serve(listener, sim_core::shutdown_signal())
        .await
        .context("server failed")?;
    tracing::info!("fake-apica stopped");
    Ok(())
}
