//! The `fake-codepipeline` command line: the fake CodePipeline job-worker API as a standalone server.
//! `src/main.rs` calls [`main`]; so does the `tests` package's copy of the binary, whose path its
//! integration tests can see.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::settings::Profile;
use crate::{FakeCodePipeline, Settings, Timing};
use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use sim_core::{ClockMode, Sim};

/// A fake AWS CodePipeline for job workers: the job-worker API over awsJson1.1 with SigV4 checks,
/// enforcing the protocol (job timeout, leases, continuation jobs, final results) on a simulated clock.
///
/// Point any SDK at it with `--endpoint-url http://LISTEN` (or AWS_ENDPOINT_URL_CODEPIPELINE) and the
/// access keys given here. The same address serves the artifact store, S3 for any request signed for
/// `s3` (AWS_ENDPOINT_URL_S3; docs/artifacts.md). The admin API lives under /_sim/ (see the README).
#[derive(Parser, Debug)]
#[command(name = "fake-codepipeline", version)]
struct Args {
    /// Address to listen on (loopback only is the sane choice).
    #[arg(long, default_value = "127.0.0.1:8080", env = "FAKE_CP_LISTEN")]
    listen: SocketAddr,

    /// Simulated clock: `manual` (moves only through POST /_sim/clock), `scaled:N` (N x real time; pause,
    /// resume and change speed through POST /_sim/clock or the console) or `real`.
    #[arg(long, default_value = "real", env = "FAKE_CP_CLOCK")]
    clock: ClockMode,

    /// An accepted access key as ID:SECRET; repeat for several callers (each replica its own).
    #[arg(
        long = "access-key",
        value_name = "ID:SECRET",
        env = "FAKE_CP_ACCESS_KEYS",
        value_delimiter = ','
    )]
    access_keys: Vec<String>,

    /// Require this token on the admin API (`/_sim/`): `Authorization: Bearer TOKEN` or
    /// `X-Sim-Admin-Token: TOKEN`. For a shared host; it also lifts the Host check.
    #[arg(long, env = "FAKE_CP_ADMIN_TOKEN")]
    admin_token: Option<String>,

    /// A host name the admin API and the console answer besides loopback names and the listen address
    /// (the admin API refuses other `Host`s, against DNS rebinding); repeatable.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,

    /// Accept unsigned and wrongly signed requests (manual exploration only; never the default).
    #[arg(long)]
    no_verify_signatures: bool,

    /// Allowed difference between a request's X-Amz-Date and real time.
    #[arg(long, default_value = "5m", value_parser = duration)]
    signature_skew: Duration,

    /// Default job timeout (simulated time; 1m..12h). Per action type through the admin API.
    #[arg(long, default_value = "1h", value_parser = duration)]
    job_timeout: Duration,

    /// Default ack window: how long a polled job waits for AcknowledgeJob before it is offered again
    /// with a new nonce. `0s` offers it to every poller until one acknowledges.
    #[arg(long, default_value = "5m", value_parser = duration)]
    ack_window: Duration,

    /// Default delay before a continuation job is queued (at least 1s). AWS documents 30 s only for the
    /// Lambda integration model; for job workers the default is inferred.
    #[arg(long, default_value = "30s", value_parser = duration)]
    continuation_delay: Duration,

    /// Default action timeout: the longest one action execution may run over all its jobs.
    #[arg(long, default_value = "24h", value_parser = duration)]
    action_timeout: Duration,

    /// Which successes end an action execution: `progress-100` (100% or no token) or `no-token`.
    #[arg(long, default_value = "progress-100")]
    final_on: crate::FinalOn,

    /// From when a job's timeout counts: `queued` (time waiting for a poll counts) or `acknowledged` (a
    /// job waiting for a poll has only the action timeout). AWS does not document it.
    #[arg(long, default_value = "queued")]
    job_timeout_from: crate::JobTimeoutFrom,

    /// What the action timeout bounds: `action-execution` (all its jobs; a retry gets a new one) or
    /// `job` (each job alone: a chain of continuation jobs is not bounded). AWS does not document it.
    #[arg(long, default_value = "action-execution")]
    action_timeout_per: crate::ActionTimeoutPer,

    /// What a result put for a job of an abandoned action gets: `refuse` (InvalidJobStateException,
    /// CP-ABANDONED) or `accept` (an empty 200 that changes nothing). AWS does not document it.
    #[arg(long, default_value = "refuse")]
    abandoned_results: crate::AbandonedResults,

    /// What a result gets that repeats, identically, the result its job already took (a client's retry
    /// after a lost response): `refuse` (InvalidJobStateException, CP-REPEAT, not a violation) or
    /// `accept` (an empty 200 that changes nothing). AWS does not document it.
    #[arg(long, default_value = "refuse")]
    repeated_results: crate::RepeatedResults,

    /// Take the ack window, continuation delay, abandoned-results and repeated-results behaviour a probe measured
    /// (`cargo xtask probe` writes the report; docs/probe.md). A flag given explicitly wins over the
    /// profile, and the profile over the defaults.
    #[arg(long, value_name = "REPORT.json", env = "FAKE_CP_PROFILE")]
    profile: Option<std::path::PathBuf>,
    /// The most custom action types CreateCustomActionType lets exist at once (AWS's quota: 50 per Region).
    #[arg(long, default_value_t = 50)]
    max_custom_action_types: usize,
    /// An upload to a KMS pipeline's artifact bucket must name the pipeline's key, not only ask for
    /// aws:kms (AG-ARTIFACT-KMS; inferred: AWS's documented bucket policy checks only the algorithm).
    #[arg(long)]
    require_kms_key_id: bool,

    /// In manual mode, hold an empty poll open up to this long (real time) until a job is queued.
    #[arg(long, value_parser = duration)]
    park_polls: Option<Duration>,

    /// Seed for job ids, nonces and injected faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Log format.
    #[arg(long, default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
}

fn duration(s: &str) -> Result<Duration, String> {
    sim_core::parse_duration(s)
}

fn parse_key(spec: &str) -> Result<(String, String)> {
    match spec.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_string(), secret.to_string()))
        }
        _ => bail!("--access-key `{spec}` must be ID:SECRET, e.g. AKIDREPLICA1:secret1"),
    }
}

/// Runs the server until SIGTERM or Ctrl-C; a bad flag or a port in use is an error message and exit 1.
pub fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let mut args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    if let Err(e) = apply_profile(&mut args, &matches) {
        eprintln!("fake-codepipeline: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake-codepipeline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-codepipeline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the user gave flag `id` (on the command line or through its environment variable), as opposed
/// to its default.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Applies `--profile`: each setting it gives replaces the default of a flag the user did not give.
fn apply_profile(args: &mut Args, matches: &ArgMatches) -> Result<()> {
    let Some(path) = &args.profile else {
        return Ok(());
    };
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--profile {origin}: cannot read it"))?;
    let profile = Profile::from_report(&text, &origin)
        .map_err(anyhow::Error::msg)
        .context("bad --profile")?;
    if let Some(d) = profile.ack_window.filter(|_| !given(matches, "ack_window")) {
        args.ack_window = d;
    }
    if let Some(d) = profile
        .continuation_delay
        .filter(|_| !given(matches, "continuation_delay"))
    {
        args.continuation_delay = d;
    }
    if let Some(a) = profile
        .abandoned_results
        .filter(|_| !given(matches, "abandoned_results"))
    {
        args.abandoned_results = a;
    }
    if let Some(r) = profile
        .repeated_results
        .filter(|_| !given(matches, "repeated_results"))
    {
        args.repeated_results = r;
    }
    Ok(())
}

async fn serve(args: Args) -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let timing = Timing {
        job_timeout: args.job_timeout,
        ack_window: args.ack_window,
        continuation_delay: args.continuation_delay,
        action_timeout: args.action_timeout,
        final_on: args.final_on,
        job_timeout_from: args.job_timeout_from,
        action_timeout_per: args.action_timeout_per,
    };
    timing
        .check()
        .map_err(anyhow::Error::msg)
        .context(if args.profile.is_some() {
            "bad timing (from the flags and --profile)"
        } else {
            "bad timing flags"
        })?;
    let mut settings = Settings {
        timing,
        verify_signatures: !args.no_verify_signatures,
        signature_skew: args.signature_skew,
        park_polls: args.park_polls,
        seed: args.seed,
        abandoned_results: args.abandoned_results,
        repeated_results: args.repeated_results,
        max_custom_action_types: args.max_custom_action_types,
        require_kms_key_id: args.require_kms_key_id,
        ..Settings::default()
    };
    settings.admin = sim_core::AdminGuard::new()
        .with_token(args.admin_token.clone())
        .allow_host(&args.listen.ip().to_string());
    for host in &args.allowed_hosts {
        settings.admin = settings.admin.clone().allow_host(host);
    }
    for spec in &args.access_keys {
        let (id, secret) = parse_key(spec)?;
        settings.access_keys.insert(id, secret);
    }
    if settings.verify_signatures && settings.access_keys.is_empty() {
        bail!(
            "no --access-key given: every signed request would be refused (give ID:SECRET, or --no-verify-signatures)"
        );
    }

    let sim = Sim::new(args.clock);
    let _driver = sim.clock.spawn_driver();
    let fake = FakeCodePipeline::new(sim, settings);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        clock = %args.clock,
        ack_window = %sim_core::format_duration(args.ack_window),
        continuation_delay = %sim_core::format_duration(args.continuation_delay),
        job_timeout = %sim_core::format_duration(args.job_timeout),
        job_timeout_from = %args.job_timeout_from,
        action_timeout_per = %args.action_timeout_per,
        abandoned_results = %args.abandoned_results,
        repeated_results = %args.repeated_results,
        profile = ?args.profile,
        "fake CodePipeline listening"
    );
    fake.serve(listener, sim_core::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
