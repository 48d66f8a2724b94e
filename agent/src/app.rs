//! Puts the pieces together from validated settings: the action, the job API and the runtime.

use std::sync::Arc;

use aws_sdk_codepipeline::Client;

use crate::action::Action;
use crate::actions::{ApicaAction, ApicaClient, BundleAction, TimedWaitAction};
use crate::cli::{ActionKind, RunSettings};
use crate::config::ConfigError;
use crate::metrics::Metrics;
use crate::runtime::{ClientTokens, JobApi, Runtime};

/// The action the settings ask for. `sdk_config` is the agent's loaded AWS configuration: the bundle
/// action's S3 client takes its region, endpoint and HTTP client (not its credentials: each job brings its own).
pub fn build_action(
    settings: &RunSettings,
    sdk_config: &aws_config::SdkConfig,
) -> Result<Arc<dyn Action>, ConfigError> {
    match (settings.action, &settings.apica) {
        (ActionKind::TimedWait, _) => Ok(Arc::new(TimedWaitAction)),
        (ActionKind::Bundle, _) => Ok(Arc::new(BundleAction::new(sdk_config))),
        (_, Some(apica)) => {
            let client = ApicaClient::new(apica.client.clone()).map_err(|e| {
                ConfigError::new(
                    "APICA_API_URL (--apica-url)",
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
            if apica.token.is_none() {
                tracing::warn!(
                    "APICA_API_TOKEN is not set: only jobs with an ApiToken property can start tests"
                );
            }
            Ok(Arc::new(ApicaAction::new(client, apica.token.clone())))
        }
        (_, None) => Err(ConfigError::new(
            "APICA_API_URL (--apica-url)",
            "not set: the Apica action needs it",
        )),
    }
}

/// A runtime for the settings, talking to CodePipeline through `client` (made from `sdk_config`).
pub fn build_runtime(
    settings: &RunSettings,
    sdk_config: &aws_config::SdkConfig,
    client: Client,
    metrics: Arc<Metrics>,
) -> Result<Runtime, ConfigError> {
    let tokens = match &settings.client_tokens_file {
        Some(path) => Some(Arc::new(ClientTokens::load(path)?)),
        None => None,
    };
    let api = JobApi::new(
        client,
        &settings.runtime.action_type,
        tokens,
        settings.runtime.query_param.clone(),
    )?;
    Runtime::new(
        settings.runtime.clone(),
        api,
        build_action(settings, sdk_config)?,
        metrics,
    )
}
