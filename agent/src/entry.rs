//! The `agent` command line as a library function, so other binaries (the workspace tests' thin
//! `reference-agent`) run exactly the same program: the job worker (no subcommand, configured by the
//! environment alone) or `register-action-type`.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{Cli, Command, LogArgs, LogFormat, RegisterArgs, RunArgs};
use crate::config::ConfigError;
use crate::{Metrics, Shutdown};
use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::error::display::DisplayErrorContext;
use clap::Parser;

/// Exit code for bad configuration.
const EXIT_CONFIG: u8 = 2;
/// Exit code when a second signal cut the drain short.
const EXIT_INTERRUPTED: i32 = 130;

fn init_logging(log: &LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.log_level).unwrap_or_else(|e| {
        eprintln!(
            "agent: AGENT_LOG (--log-level): {:?} is not a log filter ({e}); using info",
            log.log_level
        );
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colour only for a person at a terminal: a file, a pipe or journald gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match log.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn config_failure(error: &ConfigError) -> ExitCode {
    tracing::error!(setting = %error.setting, "configuration error: {}", error.message);
    eprintln!("agent: configuration error: {error}");
    ExitCode::from(EXIT_CONFIG)
}

/// Parses the command line and runs the agent; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let aws = match &cli.command {
        Some(Command::RegisterActionType(args)) => &args.aws,
        Some(Command::Run(args)) => &args.aws,
        None => &cli.run.aws,
    };
    if aws.ec2_metadata_disabled {
        // SAFETY: no other thread exists yet (the tokio runtime is built below).
        unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
    }
    init_logging(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::RegisterActionType(args)) => runtime.block_on(register(args)),
        Some(Command::Run(args)) => runtime.block_on(run(args)),
        None => runtime.block_on(run(cli.run)),
    }
}

async fn sdk_config(aws: &crate::cli::AwsArgs) -> Result<aws_config::SdkConfig, ConfigError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let (Some(key), Some(secret)) = (&aws.access_key_id, &aws.secret_access_key) {
        loader = loader.credentials_provider(Credentials::new(key, secret, None, None, "flags"));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(ConfigError::new(
            "AWS_REGION (--region)",
            "no region: set AWS_REGION or a profile's region",
        ));
    }
    Ok(config)
}

async fn run(args: RunArgs) -> ExitCode {
    let settings = match args.settings() {
        Ok(s) => s,
        Err(e) => return config_failure(&e),
    };
    let sdk = match sdk_config(&args.aws).await {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let metrics = Arc::new(Metrics::default());
    let client = crate::aws::client_from_sdk_config(&sdk, metrics.clone());
    let worker = match crate::app::build_runtime(&settings, &sdk, client, metrics.clone()) {
        Ok(r) => r,
        Err(e) => return config_failure(&e),
    };
    if let Some(addr) = settings.listen {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                return config_failure(&ConfigError::new(
                    "AGENT_LISTEN (--listen)",
                    format!("cannot listen on {addr}: {e}"),
                ));
            }
        };
        tracing::info!(%addr, "serving /healthz and /metrics");
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::health::serve(listener, metrics).await {
                tracing::error!(error = %e, "the health endpoint stopped");
            }
        });
    }
    let shutdown = Shutdown::new();
    if let Err(e) = watch_signals(shutdown.clone()) {
        eprintln!("agent: cannot watch for signals: {e}");
        return ExitCode::FAILURE;
    }
    let report = worker.run(shutdown).await;
    if report.unanswered == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The first SIGTERM/SIGINT starts the drain; a second one exits at once.
fn watch_signals(shutdown: Shutdown) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! { _ = term.recv() => "SIGTERM", _ = int.recv() => "SIGINT" };
        tracing::info!(
            signal = name,
            "shutting down: acknowledging nothing new, answering the jobs held"
        );
        shutdown.trigger();
        let name = tokio::select! { _ = term.recv() => "SIGTERM", _ = int.recv() => "SIGINT" };
        tracing::warn!(signal = name, "second signal: exiting at once");
        std::process::exit(EXIT_INTERRUPTED);
    });
    Ok(())
}

async fn register(args: RegisterArgs) -> ExitCode {
    let registration = match args.registration() {
        Ok(r) => r,
        Err(e) => return config_failure(&e),
    };
    let sdk = match sdk_config(&args.aws).await {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let client = crate::aws::client_from_sdk_config(&sdk, Arc::new(Metrics::default()));
    match crate::register::register(&client, &registration).await {
        Ok(crate::register::Registered::Created) => {
            println!("registered {}", registration.action_type);
            ExitCode::SUCCESS
        }
        Ok(crate::register::Registered::AlreadyExists) => {
            println!("{} is already registered", registration.action_type);
            ExitCode::SUCCESS
        }
        Ok(crate::register::Registered::ExistsWithOtherProperties { existing }) => {
            eprintln!(
                "agent: {} exists with other properties ({}); an action type cannot change: register a new version",
                registration.action_type,
                existing.join(", ")
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("agent: {}", DisplayErrorContext(&e));
            ExitCode::FAILURE
        }
    }
}
