//! The CodePipeline client: aws-config's standard chain (credentials, region, `AWS_ENDPOINT_URL_CODEPIPELINE`,
//! `AWS_MAX_ATTEMPTS` ...), the SDK's own retry with backoff for throttling and 5xx, timeouts, and an
//! interceptor that only counts throttling responses for `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_codepipeline::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::metrics::Metrics;

/// Loads the standard AWS configuration from the environment, profile and instance metadata.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A CodePipeline client from a loaded configuration, with timeouts and the throttle counter.
pub fn client_from_sdk_config(sdk_config: &aws_config::SdkConfig, metrics: Arc<Metrics>) -> Client {
    let mut builder = aws_sdk_codepipeline::config::Builder::from(sdk_config);
    builder.set_timeout_config(Some(timeouts(sdk_config.timeout_config())));
    Client::from_conf(builder.interceptor(ThrottleCounter { metrics }).build())
}

/// A client with static credentials for an explicit endpoint (tests, embedding): no environment read.
pub fn static_client(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    region: &str,
    metrics: Arc<Metrics>,
) -> Client {
    let config = aws_sdk_codepipeline::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            access_key, secret_key, None, None, "static",
        ))
        .timeout_config(timeouts(None))
        .interceptor(ThrottleCounter { metrics })
        .build();
    Client::from_conf(config)
}

/// Keeps any timeout the operator configured; otherwise bounds each attempt, so a hung connection
/// costs seconds, not the job.
fn timeouts(configured: Option<&TimeoutConfig>) -> TimeoutConfig {
    keep_configured(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(20))
            .operation_timeout(Duration::from_secs(60)),
        configured,
    )
}

/// `defaults`, each replaced by the timeout the operator configured, where there is one.
pub(crate) fn keep_configured(
    defaults: aws_smithy_types::timeout::TimeoutConfigBuilder,
    configured: Option<&TimeoutConfig>,
) -> TimeoutConfig {
    let mut builder = defaults;
    if let Some(c) = configured {
        if let Some(t) = c.connect_timeout() {
            builder = builder.connect_timeout(t);
        }
        if let Some(t) = c.operation_attempt_timeout() {
            builder = builder.operation_attempt_timeout(t);
        }
        if let Some(t) = c.operation_timeout() {
            builder = builder.operation_timeout(t);
        }
        if let Some(t) = c.read_timeout() {
            builder = builder.read_timeout(t);
        }
    }
    builder.build()
}

/// Counts throttling responses; it changes nothing about the request or the SDK's retries.
#[derive(Debug)]
struct ThrottleCounter {
    metrics: Arc<Metrics>,
}

/// Whether a response is CodePipeline saying "slow down".
fn is_throttle(status: u16, error_type: Option<&str>, body: Option<&[u8]>) -> bool {
    if status == 429 {
        return true;
    }
    if status < 400 {
        return false;
    }
    let named = |text: &str| text.contains("Throttl") || text.contains("TooManyRequests");
    if error_type.is_some_and(named) {
        return true;
    }
    body.is_some_and(|b| named(&String::from_utf8_lossy(&b[..b.len().min(512)])))
}

impl Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "ThrottleCounter"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if is_throttle(
            response.status().as_u16(),
            response.headers().get("x-amzn-errortype"),
            response.body().bytes(),
        ) {
            self.metrics.throttle();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_throttle;

    #[test]
    fn recognises_throttling() {
        assert!(is_throttle(400, Some("ThrottlingException"), None));
        assert!(is_throttle(
            400,
            None,
            Some(br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#)
        ));
        assert!(is_throttle(429, None, None));
        assert!(!is_throttle(
            400,
            Some("InvalidNonceException"),
            Some(b"{}")
        ));
        assert!(!is_throttle(200, None, Some(b"Throttling")));
    }
}
