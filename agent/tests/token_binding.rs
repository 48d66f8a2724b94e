//! Continuation tokens are bound to their action execution: a token another execution's job carried (put
//! there by a worker holding the same AWS key) is refused with JobFailed instead of reporting someone else's
//! test; a token of the previous agent version is honoured during the upgrade grace and refused after it; and
//! an unsigned `pending:<someone else's key>` does not start a test under that key.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent::Metrics;
use agent::signing::{TokenKey, TokenKeys};
use aws_sdk_codepipeline::types::{ActionCategory, ActionOwner, ActionTypeId, ExecutionDetails};
use serde_json::json;
use support::{APICA_TOKEN, Agent, CONTINUATION, CUSTOM, KEY1, KEY2, World};

const SECRET: &str = "shared-token-key-0123456789";

fn keys() -> TokenKeys {
    TokenKeys::new(Some(TokenKey::new(SECRET).unwrap()), vec![])
}

/// Another worker on the same queue (it holds KEY2) takes the execution's queued job and answers it with
/// `token`: success, still running.
async fn answer_next_job_as_another_worker(world: &World, token: &str) -> String {
    let client = agent::aws::static_client(
        &world.cp_url,
        KEY2.0,
        KEY2.1,
        "us-east-1",
        Arc::new(Metrics::default()),
    );
    let action_type = ActionTypeId::builder()
        .category(ActionCategory::Test)
        .owner(ActionOwner::Custom)
        .provider("ApicaLoadtest")
        .version("1")
        .build()
        .unwrap();
    let polled = client
        .poll_for_jobs()
        .action_type_id(action_type)
        .max_batch_size(1)
        .send()
        .await
        .expect("poll");
    let job = polled.jobs().first().expect("a queued job").clone();
    let (id, nonce) = (job.id().unwrap(), job.nonce().unwrap());
    client
        .acknowledge_job()
        .job_id(id)
        .nonce(nonce)
        .send()
        .await
        .expect("acknowledge");
    client
        .put_job_success_result()
        .job_id(id)
        .continuation_token(token)
        .execution_details(
            ExecutionDetails::builder()
                .summary("still running")
                .percent_complete(0)
                .build(),
        )
        .send()
        .await
        .expect("success with a token");
    id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_executions_token_is_refused_not_reported_as_this_ones() {
    let world = World::start().await;
    world.register(CUSTOM, json!({})).await;
    let agent = Agent::start(&world, CUSTOM, KEY1, |c| c.token_keys = keys());
    let victim = world.start_execution(CUSTOM, "short", "victim.jmx").await;
    world.job_in(&victim, 1, "Succeeded").await;
    let victims_token = world.execution(&victim)["jobs"][1]["continuationToken"]
        .as_str()
        .expect("a token")
        .to_string();
    agent.stop().await;

    let attacked = world.start_execution(CUSTOM, "short", "attacked.jmx").await;
    answer_next_job_as_another_worker(&world, &victims_token).await;
    let agent = Agent::start(&world, CUSTOM, KEY1, |c| c.token_keys = keys());
    world.advance(CONTINUATION);
    let e = world.finished(&attacked).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert_eq!(e["errorDetails"]["code"], "JobFailed");
    let message = e["errorDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("not minted for this job's action execution"),
        "{message}"
    );
    assert_eq!(world.tests_for("attacked.jmx"), 0);
    // The victim's own execution goes on with its token.
    let e = world.run_rounds(&victim, 8).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    agent.stop().await;
}

/// The previous version's token (no signature) for the execution's own test: honoured during the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_token_of_the_previous_version_is_honoured_during_the_grace() {
    let world = World::start().await;
    world.register(CUSTOM, json!({})).await;
    let id = world.start_execution(CUSTOM, "short", "upgrade.jmx").await;
    // What the previous version did on the first job: create the test keyed by the job id, answer `<id>;f=0`.
    let first_job = world.execution(&id)["jobs"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let backend =
        agent::actions::ApicaClient::new(agent::actions::ApicaClientConfig::new(&world.apica_url))
            .unwrap();
    let test = backend
        .create_test(APICA_TOKEN, "short", "upgrade.jmx", &first_job)
        .await
        .unwrap();
    answer_next_job_as_another_worker(&world, &format!("{};f=0", test.job_id)).await;

    let agent = Agent::start(&world, CUSTOM, KEY1, |c| c.token_keys = keys());
    let e = world.run_rounds(&id, 8).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    assert_eq!(world.tests_for("upgrade.jmx"), 1);
    // From the first answer of the new version on, its tokens are signed.
    let jobs = e["jobs"].as_array().unwrap();
    assert!(
        jobs[2]["continuationToken"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("{};f=0;k=", test.job_id))),
        "{e}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_token_is_refused_after_the_grace() {
    let world = World::start().await;
    world.register(CUSTOM, json!({})).await;
    let id = world.start_execution(CUSTOM, "short", "late.jmx").await;
    answer_next_job_as_another_worker(&world, "153245;f=0").await;
    let agent = Agent::start(&world, CUSTOM, KEY1, |c| {
        c.token_keys = keys();
        c.unsigned_token_grace = Duration::ZERO;
    });
    world.advance(CONTINUATION);
    let e = world.finished(&id).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert_eq!(e["errorDetails"]["code"], "JobFailed");
    let message = e["errorDetails"]["message"].as_str().unwrap();
    assert!(message.contains("AGENT_UNSIGNED_TOKEN_GRACE"), "{message}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_pending_token_does_not_start_a_test_under_someone_elses_key() {
    let world = World::start().await;
    world.register(CUSTOM, json!({})).await;
    // The victim's first job id is the idempotency key of its test.
    let victim = world.start_execution(CUSTOM, "short", "victim.jmx").await;
    let victims_key = world.execution(&victim)["jobs"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let agent = Agent::start(&world, CUSTOM, KEY1, |c| c.token_keys = keys());
    world.job_in(&victim, 1, "Succeeded").await;
    agent.stop().await;
    assert_eq!(world.apica.tests_for_idempotency_key(&victims_key), 1);

    let attacked = world.start_execution(CUSTOM, "short", "attacked.jmx").await;
    answer_next_job_as_another_worker(&world, &format!("pending:{victims_key};f=0")).await;
    let agent = Agent::start(&world, CUSTOM, KEY1, |c| c.token_keys = keys());
    world.advance(CONTINUATION);
    let second = world.job_in(&attacked, 2, "Succeeded").await;
    let second_job = second["id"].as_str().unwrap();
    assert_eq!(
        world.apica.tests_for_idempotency_key(&victims_key),
        1,
        "nothing more under the victim's key"
    );
    assert_eq!(
        world.apica.tests_for_idempotency_key(second_job),
        1,
        "the test starts under a key of this execution's own"
    );
    assert_eq!(world.tests_for("attacked.jmx"), 1);
    agent.stop().await;
}
