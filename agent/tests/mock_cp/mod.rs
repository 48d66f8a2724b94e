//! The runtime against a wiremock CodePipeline (the tests that script the API's answers exactly).

use std::sync::Arc;

use agent::actions::{ApicaAction, ApicaClient, ApicaClientConfig};
use agent::runtime::JobApi;
use agent::{ActionTypeId, Metrics, Runtime, RuntimeConfig};

/// A runtime for `config`'s Apica custom type, signing with a test key and calling the CodePipeline at
/// `cp_uri`. The backend is an address nothing listens on: these tests never reach it. Returns the
/// runtime and its metrics.
pub fn runtime(cp_uri: &str, id: &ActionTypeId, config: RuntimeConfig) -> (Runtime, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let client =
        agent::aws::static_client(cp_uri, "AKIDTEST", "secret", "us-east-1", metrics.clone());
    let api = JobApi::new(client, id, None, None).expect("a job API");
    let backend = ApicaClient::new(ApicaClientConfig::new("http://127.0.0.1:9")).expect("a client");
    let runtime = Runtime::new(
        config,
        api,
        Arc::new(ApicaAction::new(backend, Some("t".into()))),
        metrics.clone(),
    )
    .expect("a runtime");
    (runtime, metrics)
}
