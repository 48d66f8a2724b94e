//! The command line: every setting is a flag with an environment fallback (the harness contract of
//! `docs/design.md` sets only environment variables), turned into validated settings here.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::action_type::ActionTypeId;
use crate::config::{ConfigError, QueryParam, RuntimeConfig};

/// The reference CodePipeline job agent: polls for jobs of one action type, answers each at once with a
/// continuation token, and follows the work on the continuation jobs. With no arguments it is configured
/// by the environment alone.
#[derive(Debug, Parser)]
#[command(name = "agent", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A subcommand; without one the agent runs the worker.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The worker's settings.
    #[command(flatten)]
    pub run: RunArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// Parsed once at start: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the worker (the same as giving no subcommand).
    Run(RunArgs),
    /// Register the Custom action type on the account, idempotently (CreateCustomActionType).
    RegisterActionType(RegisterArgs),
}

/// How to log.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format on stderr.
    #[arg(long, env = "AGENT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `agent=debug`).
    #[arg(long, env = "AGENT_LOG", default_value = "info", global = true)]
    pub log_level: String,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Human,
    /// One JSON object per line.
    Json,
}

/// Which action implementation serves the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionKind {
    /// By the action type: `bundle` when the provider's name contains "bundle", else `timed-wait` when it
    /// contains "wait", else `bundle` for the category Build, else `apica` (names compared ignoring case).
    Auto,
    /// The Apica Loadtest action.
    Apica,
    /// The timed-wait action (the smoke test).
    TimedWait,
    /// The bundle build: zips the input artifacts' files with a SHA-256 manifest into the output artifacts.
    Bundle,
}

impl ActionKind {
    /// The concrete action for `action_type`.
    pub fn resolve(self, action_type: &ActionTypeId) -> ActionKind {
        if self != ActionKind::Auto {
            return self;
        }
        let provider = action_type.provider.to_ascii_lowercase();
        if provider.contains("bundle") {
            ActionKind::Bundle
        } else if provider.contains("wait") {
            ActionKind::TimedWait
        } else if action_type.category == "Build" {
            ActionKind::Bundle
        } else {
            ActionKind::Apica
        }
    }
}

/// Overrides of the standard AWS configuration chain (which reads `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL_CODEPIPELINE`, `AWS_ENDPOINT_URL`, `AWS_PROFILE`,
/// `AWS_EC2_METADATA_DISABLED` itself).
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// AWS region [default: AWS_REGION, then the profile, then instance metadata].
    #[arg(long)]
    pub region: Option<String>,
    /// CodePipeline endpoint URL [default: AWS_ENDPOINT_URL_CODEPIPELINE, then AWS_ENDPOINT_URL, then AWS's].
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Access key id [default: AWS_ACCESS_KEY_ID or the rest of the standard chain]; prefer the environment.
    #[arg(long, requires = "secret_access_key")]
    pub access_key_id: Option<String>,
    /// Secret access key [default: AWS_SECRET_ACCESS_KEY]; prefer the environment (flags show in `ps`).
    #[arg(long, requires = "access_key_id")]
    pub secret_access_key: Option<String>,
    /// Do not look up credentials or region in EC2 instance metadata (sets AWS_EC2_METADATA_DISABLED=true).
    #[arg(long)]
    pub ec2_metadata_disabled: bool,
}

/// The worker's settings.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The action type to serve, Category/Owner/Provider/Version (e.g. Test/ThirdParty/ApicaLoadtest/1).
    #[arg(long, env = "JOB_ACTION_TYPE")]
    pub action_type: Option<String>,
    /// JSON file of {clientId: clientToken} pairs (ThirdParty actions only); re-read on an unknown clientId.
    #[arg(long, env = "JOB_CLIENT_TOKENS_FILE")]
    pub client_tokens_file: Option<PathBuf>,
    /// Name=value of a Custom action's queryable property: poll only for jobs with that value.
    #[arg(long, env = "JOB_QUERY_PARAM")]
    pub query_param: Option<String>,
    /// Pause after a poll that did not fill its batch, in milliseconds.
    #[arg(long, env = "JOB_POLL_INTERVAL_MS", default_value_t = 1000)]
    pub poll_interval_ms: u64,
    /// Largest random extra pause after a poll, in milliseconds [default: a tenth of the poll interval].
    #[arg(long, env = "AGENT_POLL_JITTER_MS")]
    pub poll_jitter_ms: Option<u64>,
    /// maxBatchSize of each poll.
    #[arg(long, env = "AGENT_BATCH_SIZE", default_value_t = 10)]
    pub batch_size: u32,
    /// Jobs handled at once.
    #[arg(long, env = "AGENT_MAX_IN_FLIGHT", default_value_t = 64)]
    pub max_in_flight: usize,
    /// Consecutive rounds the backend may be unreachable before the action fails with SystemUnavailable
    /// (40 rounds ride out about 20 minutes of outage at CodePipeline's 30 s continuation delay).
    #[arg(long, env = "AGENT_MAX_FAILED_ROUNDS", default_value_t = 40)]
    pub max_failed_rounds: u32,
    /// How long a shutdown (SIGTERM/SIGINT) waits for held jobs to be answered, e.g. 5s.
    #[arg(long, env = "AGENT_DRAIN_DEADLINE", default_value = "5s", value_parser = HumanDuration)]
    pub drain_deadline: Duration,
    /// Address for /healthz and /metrics, e.g. 127.0.0.1:9464 [default: none].
    #[arg(long, env = "AGENT_LISTEN")]
    pub listen: Option<String>,
    /// Which action serves the jobs: auto picks bundle for a provider containing "bundle" or the category
    /// Build (unless the provider contains "wait"), timed-wait for a provider containing "wait", else apica.
    #[arg(long, env = "AGENT_ACTION", value_enum, default_value_t = ActionKind::Auto)]
    pub action: ActionKind,
    /// The Apica-style backend's base URL (Apica action only).
    #[arg(long, env = "APICA_API_URL")]
    pub apica_url: Option<String>,
    /// The backend's API token; a job's ApiToken property overrides it.
    #[arg(long, env = "APICA_API_TOKEN", hide_env_values = true)]
    pub apica_token: Option<String>,
    /// Longest wait for one backend request, e.g. 1s.
    #[arg(long, env = "AGENT_APICA_REQUEST_TIMEOUT", default_value = "1s", value_parser = HumanDuration)]
    pub apica_request_timeout: Duration,
    /// Longest wait for one backend call with its retries, e.g. 1500ms.
    #[arg(long, env = "AGENT_APICA_RETRY_BUDGET", default_value = "1500ms", value_parser = HumanDuration)]
    pub apica_retry_budget: Duration,
    /// Attempts per backend call, the first included.
    #[arg(long, env = "AGENT_APICA_MAX_ATTEMPTS", default_value_t = 3)]
    pub apica_max_attempts: u32,
    /// The secret that signs continuation tokens for their action execution (at least 16 bytes, e.g. from
    /// `openssl rand -hex 32`); every replica needs the same one.
    #[arg(
        long,
        env = "AGENT_TOKEN_KEY",
        hide_env_values = true,
        conflicts_with = "token_key_file"
    )]
    pub token_key: Option<String>,
    /// A file holding the token key on its first line; further lines are previous keys, still accepted.
    #[arg(long, env = "AGENT_TOKEN_KEY_FILE")]
    pub token_key_file: Option<PathBuf>,
    /// Previous token keys, comma-separated: they verify tokens minted before a rotation but sign nothing.
    #[arg(long, env = "AGENT_TOKEN_PREVIOUS_KEYS", hide_env_values = true)]
    pub token_previous_keys: Option<String>,
    /// How long after start a continuation token without a secret-key signature (an older agent's) is still
    /// accepted, with a warning, e.g. 72h; 0s refuses them.
    #[arg(long, env = "AGENT_UNSIGNED_TOKEN_GRACE", default_value = "72h", value_parser = HumanDuration)]
    pub unsigned_token_grace: Duration,
    /// The largest backend response body, in bytes; a longer answer fails the job (JobFailed) unread.
    #[arg(long, env = "AGENT_APICA_MAX_RESPONSE_BYTES", default_value_t = crate::actions::apica_client::DEFAULT_MAX_RESPONSE_BYTES)]
    pub apica_max_response_bytes: usize,
    /// AWS overrides.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Settings of `register-action-type`.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// The Custom action type to register, Category/Custom/Provider/Version.
    #[arg(long, env = "JOB_ACTION_TYPE")]
    pub action_type: Option<String>,
    /// Which action's configuration properties and artifacts to register (auto: as for running).
    #[arg(long, env = "AGENT_ACTION", value_enum, default_value_t = ActionKind::Auto)]
    pub action: ActionKind,
    /// The Details link [default for the Apica action: <APICA_API_URL>/jobs/{ExternalExecutionId}].
    #[arg(long)]
    pub execution_url_template: Option<String>,
    /// A static link to the backend.
    #[arg(long)]
    pub entity_url_template: Option<String>,
    /// The property workers poll by (JOB_QUERY_PARAM); it must be a required, non-secret one.
    #[arg(long)]
    pub queryable_property: Option<String>,
    /// The backend's base URL, for the default Details link.
    #[arg(long, env = "APICA_API_URL")]
    pub apica_url: Option<String>,
    /// AWS overrides.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// The settings for the Apica action.
#[derive(Debug, Clone)]
pub struct ApicaSettings {
    /// Client settings.
    pub client: crate::actions::ApicaClientConfig,
    /// The agent's default token.
    pub token: Option<String>,
}

/// Everything `run` needs, validated.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The runtime's settings.
    pub runtime: RuntimeConfig,
    /// The tokens file, for a ThirdParty action.
    pub client_tokens_file: Option<PathBuf>,
    /// Where to serve /healthz and /metrics.
    pub listen: Option<SocketAddr>,
    /// The action.
    pub action: ActionKind,
    /// The Apica settings, when the action is Apica.
    pub apica: Option<ApicaSettings>,
}

/// Reads the action type setting.
pub fn parse_action_type(text: Option<&str>) -> Result<ActionTypeId, ConfigError> {
    const SETTING: &str = "JOB_ACTION_TYPE (--action-type)";
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                SETTING,
                "not set: give the action type as Category/Owner/Provider/Version",
            )
        })?;
    text.parse()
        .map_err(|e: crate::action_type::ActionTypeError| ConfigError::new(SETTING, e.to_string()))
}

/// Reads a duration setting (`5s`, `1500ms`, `1m 30s`) with `humantime`, at the edge: clap refuses a
/// bad value, from the flag or the environment, with a message naming the flag, the value and the
/// environment variable.
#[derive(Clone, Copy, Debug)]
struct HumanDuration;

impl TypedValueParser for HumanDuration {
    type Value = Duration;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Duration, clap::Error> {
        let env = arg
            .and_then(clap::Arg::get_env)
            .map(|env| format!(" (the flag or {})", env.to_string_lossy()));
        // clap's own parser for a `Fn(&str)` turns the error into its "invalid value 'soon' for
        // '--drain-deadline <DRAIN_DEADLINE>': ..." and handles values that are not UTF-8.
        let parse = move |text: &str| {
            humantime::parse_duration(text.trim()).map_err(|e| {
                format!(
                    "not a duration ({e}): write it like 5s or 1500ms{}",
                    env.as_deref().unwrap_or_default()
                )
            })
        };
        parse.parse_ref(cmd, arg, value)
    }
}

fn http_url(setting: &str, text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    if !(text.starts_with("http://") || text.starts_with("https://"))
        || text.len() <= "http://".len()
    {
        return Err(ConfigError::new(
            setting,
            format!("{text:?} is not an http:// or https:// URL"),
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

impl RunArgs {
    /// The token keys from AGENT_TOKEN_KEY or the key file, and AGENT_TOKEN_PREVIOUS_KEYS.
    fn token_keys(&self) -> Result<crate::signing::TokenKeys, ConfigError> {
        use crate::signing::{TokenKey, TokenKeys};
        const KEY: &str = "AGENT_TOKEN_KEY (--token-key)";
        const FILE: &str = "AGENT_TOKEN_KEY_FILE (--token-key-file)";
        const PREVIOUS: &str = "AGENT_TOKEN_PREVIOUS_KEYS (--token-previous-keys)";
        let key = |setting: &str, text: &str| {
            TokenKey::new(text).map_err(|e| ConfigError::new(setting, e))
        };
        let mut previous = Vec::new();
        let current = match (
            self.token_key.as_deref().filter(|k| !k.trim().is_empty()),
            self.token_key_file
                .as_deref()
                .filter(|p| !p.as_os_str().is_empty()),
        ) {
            (Some(text), _) => Some(key(KEY, text)?),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(FILE, format!("cannot read {}: {e}", path.display()))
                })?;
                let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
                let Some(first) = lines.next() else {
                    return Err(ConfigError::new(
                        FILE,
                        format!("{} holds no key", path.display()),
                    ));
                };
                for line in lines {
                    previous.push(key(FILE, line)?);
                }
                Some(key(FILE, first)?)
            }
            (None, None) => None,
        };
        for text in self
            .token_previous_keys
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            previous.push(key(PREVIOUS, text)?);
        }
        if current.is_none() && !previous.is_empty() {
            return Err(ConfigError::new(
                PREVIOUS,
                "previous keys without a current one: set AGENT_TOKEN_KEY (or AGENT_TOKEN_KEY_FILE) too",
            ));
        }
        Ok(TokenKeys::new(current, previous))
    }

    /// Validates the settings; the error names the setting to fix.
    pub fn settings(&self) -> Result<RunSettings, ConfigError> {
        let action_type = parse_action_type(self.action_type.as_deref())?;
        let mut runtime = RuntimeConfig::new(action_type.clone());
        runtime.poll_interval = Duration::from_millis(self.poll_interval_ms);
        runtime.poll_jitter =
            Duration::from_millis(self.poll_jitter_ms.unwrap_or(self.poll_interval_ms / 10));
        runtime.batch_size = self.batch_size;
        runtime.max_in_flight = self.max_in_flight;
        runtime.max_failed_rounds = self.max_failed_rounds;
        runtime.drain_deadline = self.drain_deadline;
        runtime.query_param = match self
            .query_param
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            None => None,
            Some(q) => Some(
                q.parse::<QueryParam>()
                    .map_err(|e| ConfigError::new("JOB_QUERY_PARAM (--query-param)", e))?,
            ),
        };
        runtime.token_keys = self.token_keys()?;
        runtime.unsigned_token_grace = self.unsigned_token_grace;
        runtime.validate()?;
        let client_tokens_file = self
            .client_tokens_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty());
        if action_type.owner == crate::action_type::Owner::ThirdParty
            && client_tokens_file.is_none()
        {
            return Err(ConfigError::new(
                "JOB_CLIENT_TOKENS_FILE (--client-tokens-file)",
                format!(
                    "not set: {action_type} is a ThirdParty action and needs the clientId -> clientToken pairs"
                ),
            ));
        }
        let listen = match self
            .listen
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            None => None,
            Some(l) => Some(l.parse::<SocketAddr>().map_err(|e| {
                ConfigError::new(
                    "AGENT_LISTEN (--listen)",
                    format!("{l:?} is not an address like 127.0.0.1:9464 ({e})"),
                )
            })?),
        };
        let action = self.action.resolve(&action_type);
        let apica = match action {
            ActionKind::Apica => {
                const URL: &str = "APICA_API_URL (--apica-url)";
                let url = self
                    .apica_url
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        ConfigError::new(
                            URL,
                            "not set: the Apica Loadtest action needs the backend's base URL",
                        )
                    })?;
                let mut client = crate::actions::ApicaClientConfig::new(http_url(URL, url)?);
                client.request_timeout = self.apica_request_timeout;
                client.retry_budget = self.apica_retry_budget;
                if self.apica_max_attempts == 0 {
                    return Err(ConfigError::new(
                        "AGENT_APICA_MAX_ATTEMPTS (--apica-max-attempts)",
                        "must be at least 1",
                    ));
                }
                client.max_attempts = self.apica_max_attempts;
                // A test's status is a few hundred bytes; below 1 KiB even an error body would not fit.
                if self.apica_max_response_bytes < 1024 {
                    return Err(ConfigError::new(
                        "AGENT_APICA_MAX_RESPONSE_BYTES (--apica-max-response-bytes)",
                        format!(
                            "{} bytes is too small for the backend's answers: give at least 1024 (default 1048576)",
                            self.apica_max_response_bytes
                        ),
                    ));
                }
                client.max_response_bytes = self.apica_max_response_bytes;
                Some(ApicaSettings {
                    client,
                    token: self.apica_token.clone().filter(|t| !t.trim().is_empty()),
                })
            }
            _ => None,
        };
        Ok(RunSettings {
            runtime,
            client_tokens_file,
            listen,
            action,
            apica,
        })
    }
}

impl RegisterArgs {
    /// Validates the settings into a registration; the error names the setting to fix.
    pub fn registration(&self) -> Result<crate::register::Registration, ConfigError> {
        let action_type = parse_action_type(self.action_type.as_deref())?;
        if action_type.owner != crate::action_type::Owner::Custom {
            return Err(ConfigError::new(
                "JOB_ACTION_TYPE (--action-type)",
                format!(
                    "{action_type} is not Custom: only Custom action types can be registered by an account"
                ),
            ));
        }
        let action = self.action.resolve(&action_type);
        let (mut properties, input_artifacts, output_artifacts) = match action {
            ActionKind::TimedWait => (crate::register::timed_wait_properties(), (0, 5), (0, 0)),
            // The bundle reads at least one artifact and must make one.
            ActionKind::Bundle => (Vec::new(), (1, 5), (1, 1)),
            _ => (crate::register::apica_properties(), (0, 5), (0, 0)),
        };
        if let Some(name) = self.queryable_property.as_deref() {
            let Some(p) = properties.iter_mut().find(|p| p.name == name) else {
                return Err(ConfigError::new(
                    "--queryable-property",
                    format!("{name:?} is not one of this action's properties"),
                ));
            };
            if !p.required || p.secret {
                return Err(ConfigError::new(
                    "--queryable-property",
                    format!("{name} must be required and not secret"),
                ));
            }
            p.queryable = true;
        }
        let execution_url_template = match (
            &self.execution_url_template,
            action,
            self.apica_url.as_deref(),
        ) {
            (Some(t), _, _) => Some(t.clone()),
            (None, ActionKind::Apica, Some(url)) => Some(format!(
                "{}/jobs/{{ExternalExecutionId}}",
                http_url("APICA_API_URL (--apica-url)", url)?
            )),
            (None, ActionKind::Apica, None) => {
                return Err(ConfigError::new(
                    "--execution-url-template",
                    "not set: give it, or APICA_API_URL (--apica-url) to link to <url>/jobs/{ExternalExecutionId}",
                ));
            }
            (None, _, _) => None,
        };
        Ok(crate::register::Registration {
            action_type,
            properties,
            execution_url_template,
            entity_url_template: self.entity_url_template.clone(),
            input_artifacts,
            output_artifacts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> RunArgs {
        let mut full = vec!["agent"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).unwrap().run
    }

    #[test]
    fn harness_settings_are_enough() {
        let s = run_args(&[
            "--action-type",
            "Test/ThirdParty/ApicaLoadtest/1",
            "--client-tokens-file",
            "/tmp/t.json",
            "--apica-url",
            "http://127.0.0.1:1/",
            "--poll-interval-ms",
            "0",
        ])
        .settings()
        .unwrap();
        assert_eq!(s.action, ActionKind::Apica);
        assert_eq!(s.runtime.poll_interval, Duration::ZERO);
        assert_eq!(s.apica.unwrap().client.base_url, "http://127.0.0.1:1");
    }

    #[test]
    fn errors_name_the_setting() {
        let err = |args: &[&str]| run_args(args).settings().unwrap_err().setting;
        assert!(err(&[]).starts_with("JOB_ACTION_TYPE"));
        assert!(
            err(&["--action-type", "Test/ThirdParty/ApicaLoadtest/1"])
                .starts_with("JOB_CLIENT_TOKENS_FILE")
        );
        assert!(
            err(&["--action-type", "Test/Custom/ApicaLoadtest/1"]).starts_with("APICA_API_URL")
        );
        assert!(
            err(&["--action-type", "Test/Custom/A/1", "--apica-url", "ftp://x"])
                .starts_with("APICA_API_URL")
        );
        assert!(
            err(&["--action-type", "Test/Custom/Wait/1", "--listen", "nope"])
                .starts_with("AGENT_LISTEN")
        );
        assert!(
            err(&["--action-type", "Test/Custom/Wait/1", "--query-param", "x"])
                .starts_with("JOB_QUERY_PARAM")
        );
    }

    #[test]
    fn durations_are_read_by_humantime_with_the_documented_defaults() {
        let s = run_args(&[
            "--action-type",
            "Test/Custom/ApicaLoadtest/1",
            "--apica-url",
            "http://x",
        ])
        .settings()
        .unwrap();
        assert_eq!(s.runtime.drain_deadline, Duration::from_secs(5));
        let client = s.apica.unwrap().client;
        assert_eq!(client.request_timeout, Duration::from_secs(1));
        assert_eq!(client.retry_budget, Duration::from_millis(1500));
        let args = run_args(&[
            "--drain-deadline",
            "1m 30s",
            "--apica-request-timeout",
            " 250ms ",
            "--apica-retry-budget=0s",
        ]);
        assert_eq!(args.drain_deadline, Duration::from_secs(90));
        assert_eq!(args.apica_request_timeout, Duration::from_millis(250));
        assert_eq!(args.apica_retry_budget, Duration::ZERO);
    }

    #[test]
    fn a_bad_duration_is_refused_by_clap_naming_the_flag_the_value_and_the_variable() {
        for (flag, env) in [
            ("--drain-deadline", "AGENT_DRAIN_DEADLINE"),
            ("--apica-request-timeout", "AGENT_APICA_REQUEST_TIMEOUT"),
            ("--apica-retry-budget", "AGENT_APICA_RETRY_BUDGET"),
        ] {
            for value in ["soon", "5", "-1s", ""] {
                let err = Cli::try_parse_from(["agent", &format!("{flag}={value}")]).unwrap_err();
                assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
                let message = err.to_string();
                for needle in [flag, &format!("'{value}'"), env, "not a duration"] {
                    assert!(message.contains(needle), "{flag} {value:?}: {message}");
                }
            }
            // The subcommand's flags are the same arguments.
            let err = Cli::try_parse_from(["agent", "run", flag, "soon"]).unwrap_err();
            assert!(err.to_string().contains(env), "{err}");
        }
    }

    #[test]
    fn token_keys_come_from_the_flag_or_the_file_with_previous_keys_for_rotation() {
        let base = ["--action-type", "Test/Custom/TimedWait/1"];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            run_args(&args).settings()
        };
        let none = with(&[]).unwrap().runtime;
        assert!(none.token_keys.current().is_none());
        assert_eq!(none.unsigned_token_grace, Duration::from_secs(72 * 3600));
        let s = with(&[
            "--token-key",
            "current-key-0123456789",
            "--token-previous-keys",
            "old-key-0123456789ab, older-key-0123456789",
            "--unsigned-token-grace",
            "0s",
        ])
        .unwrap()
        .runtime;
        assert!(s.token_keys.current().is_some());
        assert_eq!(s.token_keys.previous().len(), 2);
        assert_eq!(s.unsigned_token_grace, Duration::ZERO);
        let dir = std::env::temp_dir().join(format!("agent-token-key-{}", std::process::id()));
        std::fs::write(&dir, "current-key-0123456789\n\nold-key-0123456789ab\n").unwrap();
        let s = with(&["--token-key-file", dir.to_str().unwrap()])
            .unwrap()
            .runtime;
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(
            s.token_keys.current().unwrap().id(),
            crate::signing::TokenKey::new("current-key-0123456789")
                .unwrap()
                .id()
        );
        assert_eq!(s.token_keys.previous().len(), 1);
        let err = with(&["--token-key", "short"]).unwrap_err();
        assert!(err.setting.starts_with("AGENT_TOKEN_KEY"), "{err}");
        let err = with(&["--token-previous-keys", "old-key-0123456789ab"]).unwrap_err();
        assert!(
            err.setting.starts_with("AGENT_TOKEN_PREVIOUS_KEYS"),
            "{err}"
        );
    }

    #[test]
    fn a_wait_provider_picks_the_timed_wait() {
        let s = run_args(&["--action-type", "Test/Custom/TimedWait/1"])
            .settings()
            .unwrap();
        assert_eq!(s.action, ActionKind::TimedWait);
        assert!(s.apica.is_none());
    }

    #[test]
    fn a_build_category_or_a_bundle_provider_picks_the_bundle() {
        let action = |action_type: &str, extra: &[&str]| {
            let mut args = vec!["--action-type", action_type];
            args.extend_from_slice(extra);
            run_args(&args).settings().unwrap().action
        };
        assert_eq!(action("Build/Custom/Bundle/1", &[]), ActionKind::Bundle);
        assert_eq!(action("Build/Custom/MyTool/1", &[]), ActionKind::Bundle);
        assert_eq!(
            action("Deploy/Custom/ZipBUNDLER/1", &[]),
            ActionKind::Bundle
        );
        assert_eq!(
            action("Build/Custom/TimedWait/1", &[]),
            ActionKind::TimedWait
        );
        assert_eq!(
            action("Test/Custom/TimedWait/1", &[]),
            ActionKind::TimedWait
        );
        assert_eq!(
            action("Test/Custom/Bundle/1", &["--action", "timed-wait"]),
            ActionKind::TimedWait
        );
        assert_eq!(
            action("Test/Custom/Anything/1", &["--action", "bundle"]),
            ActionKind::Bundle
        );
        // The bundle needs no backend settings.
        let s = run_args(&["--action-type", "Build/Custom/Bundle/1"])
            .settings()
            .unwrap();
        assert!(s.apica.is_none());
    }

    #[test]
    fn the_bundle_registers_with_artifacts_and_no_properties() {
        let cli = Cli::try_parse_from([
            "agent",
            "register-action-type",
            "--action-type",
            "Build/Custom/Bundle/1",
        ])
        .unwrap();
        let Some(Command::RegisterActionType(args)) = cli.command else {
            panic!()
        };
        let r = args.registration().unwrap();
        assert!(r.properties.is_empty());
        assert_eq!((r.input_artifacts, r.output_artifacts), ((1, 5), (1, 1)));
        assert_eq!(r.execution_url_template, None);
    }

    #[test]
    fn registration_defaults_the_details_link() {
        let cli = Cli::try_parse_from([
            "agent",
            "register-action-type",
            "--action-type",
            "Test/Custom/ApicaLoadtest/1",
            "--apica-url",
            "https://loadtest.example/",
        ])
        .unwrap();
        let Some(Command::RegisterActionType(args)) = cli.command else {
            panic!()
        };
        let r = args.registration().unwrap();
        assert_eq!(
            r.execution_url_template.as_deref(),
            Some("https://loadtest.example/jobs/{ExternalExecutionId}")
        );
        assert_eq!(r.properties.len(), 3);
    }
}
