//! The `probe` command line: set up, run every probe, clean up, write the report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::Region;
use aws_smithy_types::timeout::TimeoutConfig;
use clap::Parser;

use crate::probes::{Plan, run_all};
use crate::report::{FORMAT, ProbeResult, Report, Status, secs};
use crate::world::{Setup, World, describe, fresh_version};

/// Black-box probes of what AWS CodePipeline leaves undocumented: the ack window, the continuation delay,
/// the re-offer nonce, a second AcknowledgeJob, a put after an abandoning stop, a retried identical put
/// and a result before acknowledge. Only the public CodePipeline API is used, so the same run works
/// against AWS and against the fake.
///
/// It creates two custom action types (`Source` and `Test`, provider JobSimProbe, a version never used
/// before) and a two-stage pipeline `job-sim-probe-VERSION`, runs one pipeline execution per probe,
/// deletes all of it at the end (also after a failure or Ctrl-C), and writes a JSON report whose
/// `profile` the fake loads with `fake-codepipeline --profile REPORT`. See docs/probe.md.
///
/// Credentials and region come from the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_REGION, ...).
#[derive(Parser, Debug)]
#[command(name = "probe", version)]
pub struct Args {
    /// The CodePipeline endpoint, e.g. http://127.0.0.1:8080 for the fake. Without it: AWS (or
    /// AWS_ENDPOINT_URL_CODEPIPELINE), and --role-arn and --artifact-bucket are required.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// The region (default: the AWS chain's, e.g. AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,

    /// Server seconds per real second: 1 against AWS; N against a fake started with `--clock scaled:N`.
    /// Every measured duration is real time times this.
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub time_scale: f64,

    /// Also run the long probes (the ack window and the re-offer nonce): against AWS they wait up to
    /// --ack-window-limit of real time.
    #[arg(long)]
    pub long: bool,

    /// The longest the ack window probe waits for a re-offer (server time).
    #[arg(long, default_value = "1h", value_parser = duration, value_name = "DURATION")]
    pub ack_window_limit: Duration,

    /// The longest the continuation probe waits for the continuation job (server time).
    #[arg(long, default_value = "10m", value_parser = duration, value_name = "DURATION")]
    pub continuation_limit: Duration,

    /// Time between polls (server time; at least 5ms of real time): the finest resolution of a
    /// measured duration.
    #[arg(long, default_value = "1s", value_parser = duration, value_name = "DURATION")]
    pub poll_interval: Duration,

    /// How long to wait for a job to appear after a run starts or a stage is answered (real time).
    #[arg(long, default_value = "2m", value_parser = duration, value_name = "DURATION")]
    pub job_wait: Duration,

    /// The pipeline's service role (required against AWS; the fake takes the default placeholder).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,

    /// The pipeline's artifact bucket, which must exist in the region (required against AWS; the fake
    /// takes the default placeholder). The probe writes nothing to it.
    #[arg(long, value_name = "BUCKET")]
    pub artifact_bucket: Option<String>,

    /// Where to write the JSON report.
    #[arg(long, default_value = "target/probe/report.json", value_name = "FILE")]
    pub out: PathBuf,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); write it like `90s`, `10m` or `1h`"))
}

/// The placeholders the fake takes for the pipeline's role and bucket.
const PLACEHOLDER_ROLE: &str = "arn:aws:iam::111111111111:role/job-sim-probe";
const PLACEHOLDER_BUCKET: &str = "job-sim-probe-artifacts";

/// The smallest real time between polls.
const MIN_POLL_REAL: Duration = Duration::from_millis(5);

impl Args {
    fn check(&self) -> Result<()> {
        if !(self.time_scale.is_finite() && self.time_scale >= 0.001 && self.time_scale <= 1e6) {
            bail!(
                "--time-scale {} is not a speed-up factor from 0.001 to 1000000 (1 against AWS; N for a fake on --clock scaled:N)",
                self.time_scale
            );
        }
        if self.endpoint.is_none() && (self.role_arn.is_none() || self.artifact_bucket.is_none()) {
            bail!(
                "against AWS (no --endpoint) the pipeline needs --role-arn (its service role) and --artifact-bucket (an S3 bucket in the region): see docs/probe.md"
            );
        }
        if self.job_wait.is_zero() {
            bail!("--job-wait 0s leaves no time for a job to appear; give e.g. 2m");
        }
        Ok(())
    }

    fn plan(&self) -> Plan {
        Plan {
            scale: self.time_scale,
            long: self.long,
            ack_window_limit: self.ack_window_limit,
            continuation_limit: self.continuation_limit,
            job_wait: self.job_wait,
        }
    }
}

/// Runs the probe; exit 0 when every probe that ran got an answer, 1 otherwise, 2 for bad flags.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.check() {
        eprintln!("probe: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("probe: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("probe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn clients(args: &Args) -> Result<(Client, Client, String)> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &args.endpoint {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .context("no region: pass --region or set AWS_REGION")?;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let build = |retry: RetryConfig| {
        Client::from_conf(
            aws_sdk_codepipeline::config::Builder::from(&config)
                .timeout_config(timeouts.clone())
                .retry_config(retry)
                .build(),
        )
    };
    Ok((
        build(RetryConfig::disabled()),
        build(RetryConfig::standard().with_max_attempts(4)),
        region,
    ))
}

fn line(name: &str, r: &ProbeResult) {
    let status = match r.status {
        Status::Measured => "measured",
        Status::Observed => "observed",
        Status::NotSeen => "not seen",
        Status::Skipped => "skipped",
        Status::Error => "ERROR",
    };
    eprintln!(
        "probe: {name:<26} {status:<9} {:>8.1} s real  {}",
        r.real_seconds, r.detail
    );
}

async fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let plan = args.plan();
    let (client, admin, region) = clients(&args).await?;
    let scaled_poll = Duration::from_secs_f64(args.poll_interval.as_secs_f64() / args.time_scale);
    let setup = Setup {
        role_arn: args
            .role_arn
            .clone()
            .unwrap_or_else(|| PLACEHOLDER_ROLE.into()),
        artifact_bucket: args
            .artifact_bucket
            .clone()
            .unwrap_or_else(|| PLACEHOLDER_BUCKET.into()),
        poll_interval: scaled_poll.max(MIN_POLL_REAL),
        job_wait: args.job_wait,
    };
    let poll_interval_s = setup.poll_interval.as_secs_f64() * args.time_scale;
    let mut world = World::new(client, admin, setup, fresh_version(SystemTime::now()));
    let endpoint = args.endpoint.clone().unwrap_or_else(|| "default".into());
    eprintln!(
        "probe: {endpoint} ({region}), time scale {}, polls every {:.3} s of server time",
        args.time_scale, poll_interval_s
    );
    eprintln!(
        "probe: worst case in real time: ack window {} ({}), continuation delay {}, each other probe {}",
        humantime::format_duration(Duration::from_secs(plan.ack_window_real().as_secs())),
        if plan.long {
            "--long"
        } else {
            "skipped without --long"
        },
        humantime::format_duration(Duration::from_secs(plan.continuation_real().as_secs())),
        humantime::format_duration(Duration::from_secs(plan.short_real().as_secs())),
    );
    eprintln!(
        "probe: creates custom action types {PROVIDER}/{v} (Source, Test) and pipeline {p}, deletes them at the end; on AWS this costs nothing (docs/probe.md, \"Cost\")",
        PROVIDER = crate::world::PROVIDER,
        v = world.version,
        p = world.pipeline
    );

    let created = world.create().await;
    let probes = match created {
        Err(e) => {
            let cleanup = world.cleanup().await;
            for c in &cleanup {
                eprintln!("probe: cleanup: {} {}", c.what, c.outcome);
            }
            return Err(e.context("setting up the probe's action types and pipeline"));
        }
        Ok(()) => {
            let interrupted = tokio::select! {
                p = run_all(&mut world, &plan, &line) => Some(p),
                _ = tokio::signal::ctrl_c() => None,
            };
            match interrupted {
                Some(p) => p,
                None => {
                    eprintln!("probe: interrupted; cleaning up");
                    for c in world.cleanup().await {
                        eprintln!("probe: cleanup: {} {}", c.what, c.outcome);
                    }
                    return Ok(ExitCode::from(130));
                }
            }
        }
    };
    let cleanup = world.cleanup().await;
    for c in &cleanup {
        eprintln!(
            "probe: cleanup: {} {}{}",
            c.what,
            c.outcome,
            c.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    let action_types = vec![
        describe(&world.source_type()?),
        describe(&world.test_type()?),
    ];
    let report = Report {
        format: FORMAT,
        endpoint,
        region,
        time_scale: args.time_scale,
        poll_interval_s: (poll_interval_s * 1000.0).round() / 1000.0,
        started_at,
        real_seconds: 0.0,
        action_types,
        pipeline: world.pipeline.clone(),
        profile: probes.profile(),
        probes,
        cleanup,
    };
    let report = Report {
        real_seconds: secs(started.elapsed()),
        ..report
    };
    let any_error = [
        &report.probes.ack_window,
        &report.probes.reoffer_nonce,
        &report.probes.second_acknowledge,
        &report.probes.result_before_acknowledge,
        &report.probes.continuation_delay,
        &report.probes.put_after_abandon,
        &report.probes.retried_identical_put,
    ]
    .iter()
    .any(|r| r.status == Status::Error);
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
    std::fs::write(&args.out, text + "\n")
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "probe: report written to {} ({:.1} s real)",
        args.out.display(),
        report.real_seconds
    );
    Ok(if any_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
