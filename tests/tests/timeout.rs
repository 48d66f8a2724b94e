//! Deadlines on the simulated clock (CP-TIMEOUT, CP-ACTION-TIMEOUT).

use std::time::Duration;

use serde_json::json;
use tests::{CUSTOM, KEY1, TestCp, error_code, error_message, sdk_type, take_custom};

async fn take_job(cp: &TestCp) -> String {
    take_custom(&cp.client(KEY1)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_fires_exactly_at_the_deadline() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "short");
    let job = take_job(&cp).await;

    cp.advance(Duration::from_secs(59 * 60 + 59));
    let view = cp.execution(&label);
    assert_eq!(view["jobs"][0]["status"], "InProgress", "running at 59:59");
    assert_eq!(view["status"], "InProgress");
    cp.advance(Duration::from_secs(1));
    let view = cp.execution(&label);
    assert_eq!(view["jobs"][0]["status"], "TimedOut", "TimedOut at 1:00:00");
    assert_eq!(view["status"], "Failed");
    assert_eq!(view["errorDetails"]["code"], "JobTimedOut");

    let timeouts = cp.events_with_rule("CP-TIMEOUT");
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].stamp(), "+01:00:00");
    assert!(
        timeouts[0].detail.contains("acknowledged at +00:00:00")
            && timeouts[0].detail.contains("no result"),
        "the timeline says why: {}",
        timeouts[0].detail
    );

    // A result after the deadline is refused, and names the rule.
    let a = cp.client(KEY1);
    let err = a
        .put_job_success_result()
        .job_id(&job)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidJobStateException");
    assert!(
        error_message(&err).contains("CP-TIMEOUT"),
        "{}",
        error_message(&err)
    );
    assert_eq!(
        cp.execution(&label)["status"],
        "Failed",
        "the refused result changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_job_gets_its_own_deadline_from_when_it_is_queued() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({"continuationDelay": "30s"}));
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let job = take_job(&cp).await;
    cp.advance(Duration::from_secs(50 * 60));
    a.put_job_success_result()
        .job_id(&job)
        .continuation_token("t")
        .send()
        .await
        .unwrap();
    cp.advance(Duration::from_secs(30));
    let view = cp.execution(&label);
    assert_eq!(view["jobs"][1]["status"], "Queued");
    assert_eq!(
        view["jobs"][1]["deadline"], "+01:50:30",
        "queued at +00:50:30, one hour to answer"
    );
    cp.advance(Duration::from_secs(3599));
    assert_eq!(cp.execution(&label)["jobs"][1]["status"], "Queued");
    cp.advance(Duration::from_secs(1));
    let view = cp.execution(&label);
    assert_eq!(view["jobs"][1]["status"], "TimedOut");
    assert!(
        cp.events_with_rule("CP-TIMEOUT")[0]
            .detail
            .contains("never picked up")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_execution_fails_at_the_action_timeout_however_many_jobs_it_took() {
    let cp = TestCp::start().await;
    cp.register(
        CUSTOM,
        json!({"actionTimeout": "3h", "continuationDelay": "1s"}),
    );
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    // A well-behaved agent answers every 30 minutes; the action still ends at 3 h.
    for _ in 0..7 {
        let Some(job) = a
            .poll_for_jobs()
            .action_type_id(sdk_type(CUSTOM))
            .send()
            .await
            .unwrap()
            .jobs()
            .first()
            .cloned()
        else {
            break;
        };
        let id = job.id().unwrap();
        a.acknowledge_job()
            .job_id(id)
            .nonce(job.nonce().unwrap())
            .send()
            .await
            .unwrap();
        cp.advance(Duration::from_secs(30 * 60 - 1));
        a.put_job_success_result()
            .job_id(id)
            .continuation_token("t")
            .send()
            .await
            .unwrap();
        cp.advance(Duration::from_secs(1));
    }
    let view = cp.execution(&label);
    assert_eq!(view["status"], "Failed");
    let ev = cp.events_with_rule("CP-ACTION-TIMEOUT");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].stamp(), "+03:00:00");
    assert!(
        cp.events_with_rule("CP-TIMEOUT").is_empty(),
        "no single job timed out"
    );
}

/// A result put after the action execution ran past the action timeout is refused with a message that
/// names the action timeout, not the job's own deadline (which had not passed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_put_after_the_action_timeout_is_told_so() {
    let cp = TestCp::start().await;
    cp.register(
        CUSTOM,
        json!({"actionTimeout": "3h", "continuationDelay": "1s"}),
    );
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let mut held = None;
    for round in 0..6 {
        let job = a
            .poll_for_jobs()
            .action_type_id(sdk_type(CUSTOM))
            .send()
            .await
            .unwrap()
            .jobs()
            .first()
            .cloned()
            .expect("a job each round");
        let id = job.id().unwrap().to_string();
        a.acknowledge_job()
            .job_id(&id)
            .nonce(job.nonce().unwrap())
            .send()
            .await
            .unwrap();
        if round == 5 {
            held = Some(id);
            break;
        }
        cp.advance(Duration::from_secs(30 * 60 - 1));
        a.put_job_success_result()
            .job_id(&id)
            .continuation_token("t")
            .send()
            .await
            .unwrap();
        cp.advance(Duration::from_secs(1));
    }
    // 2 h 30 m in, job 6 is held; the action times out at 3 h, half an hour before that job's deadline.
    cp.advance(Duration::from_secs(31 * 60));
    assert_eq!(cp.execution(&label)["status"], "Failed");
    let err = a
        .put_job_success_result()
        .job_id(held.expect("job 6"))
        .send()
        .await
        .expect_err("the action has ended");
    assert_eq!(error_code(&err), "InvalidJobStateException");
    let message = error_message(&err);
    assert!(
        message.contains("exceeded the action timeout at +03:00:00"),
        "{message}"
    );
    assert!(!message.contains("deadline passed"), "{message}");
}

/// `jobTimeoutFrom = acknowledged` (inferred, a setting): a job waiting for a poll has no deadline of its
/// own, and its deadline is the acknowledgement plus the job timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_job_timeout_from_acknowledged_the_deadline_counts_from_the_acknowledgement() {
    let cp = TestCp::start().await;
    cp.register(
        CUSTOM,
        json!({"jobTimeoutFrom": "acknowledged", "actionTimeout": "3h"}),
    );
    let label = cp.start_execution(CUSTOM, "short");
    let view = cp.execution(&label);
    assert_eq!(view["jobs"][0]["deadline"], serde_json::Value::Null);
    // Two and a half hours unpolled: with the default it would have timed out at +01:00:00.
    cp.advance(Duration::from_secs(150 * 60));
    assert_eq!(cp.execution(&label)["jobs"][0]["status"], "Queued");
    assert!(cp.events_with_rule("CP-TIMEOUT").is_empty());
    let job = take_job(&cp).await;
    let view = cp.execution(&label);
    assert_eq!(view["jobs"][0]["deadline"], "+03:30:00");
    // The action timeout (3 h from the start) comes first here, and ends it.
    cp.advance(Duration::from_secs(30 * 60));
    let view = cp.execution(&label);
    assert_eq!(view["status"], "Failed");
    assert_eq!(cp.events_with_rule("CP-ACTION-TIMEOUT").len(), 1);
    let err = cp
        .client(KEY1)
        .put_job_success_result()
        .job_id(&job)
        .send()
        .await
        .expect_err("the action has ended");
    assert!(
        error_message(&err).contains("exceeded the action timeout at +03:00:00"),
        "{}",
        error_message(&err)
    );
}

/// `actionTimeoutPer = job` (inferred, a setting): no bound over a chain of continuation jobs, while each
/// job keeps its own job timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_action_timeout_per_job_a_chain_of_jobs_runs_past_the_action_timeout() {
    let cp = TestCp::start().await;
    cp.register(
        CUSTOM,
        json!({"actionTimeoutPer": "job", "actionTimeout": "2h", "continuationDelay": "1s"}),
    );
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    // Seven jobs of 30 minutes each: 3 h 30 m, past the 2 h action timeout.
    for _ in 0..7 {
        let job = take_job(&cp).await;
        cp.advance(Duration::from_secs(30 * 60 - 1));
        a.put_job_success_result()
            .job_id(&job)
            .continuation_token("t")
            .send()
            .await
            .unwrap();
        cp.advance(Duration::from_secs(1));
    }
    assert_eq!(cp.execution(&label)["status"], "InProgress");
    assert!(cp.events_with_rule("CP-ACTION-TIMEOUT").is_empty());
    // A job still has its own hour.
    take_job(&cp).await;
    cp.advance(Duration::from_secs(3600));
    let view = cp.execution(&label);
    assert_eq!(view["status"], "Failed");
    assert_eq!(view["errorDetails"]["code"], "JobTimedOut");
    assert_eq!(cp.events_with_rule("CP-TIMEOUT").len(), 1);
}
