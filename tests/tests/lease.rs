//! Poll leases and nonces (CP-LEASE, CP-NONCE): re-offers after the ack window, races with ack window 0,
//! and safe repeated acknowledgements.

use std::time::Duration;

use aws_sdk_codepipeline::types::JobStatus;
use serde_json::json;
use tests::{CUSTOM, KEY1, KEY2, TestCp, error_code, poll_custom, sdk_type};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_job_is_offered_again_after_the_ack_window_with_a_new_nonce() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({"ackWindow": "5m"}));
    let label = cp.start_execution(CUSTOM, "short");
    let (a, b) = (cp.client(KEY1), cp.client(KEY2));

    let (job, old_nonce) = poll_custom(&a).await.expect("first poll gets the job");
    assert_eq!(cp.execution(&label)["jobs"][0]["status"], "Dispatched");
    assert!(
        poll_custom(&b).await.is_none(),
        "a dispatched job is leased to its poller"
    );
    cp.advance(Duration::from_secs(299));
    assert!(
        poll_custom(&b).await.is_none(),
        "still leased just before the window ends"
    );
    cp.advance(Duration::from_secs(1));

    let (again, new_nonce) = poll_custom(&b)
        .await
        .expect("offered again after the window");
    assert_eq!(again, job, "the same job comes back");
    assert_ne!(new_nonce, old_nonce, "with a new nonce");
    let err = a
        .acknowledge_job()
        .job_id(&job)
        .nonce(&old_nonce)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidNonceException");
    let ok = b
        .acknowledge_job()
        .job_id(&job)
        .nonce(&new_nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), Some(&JobStatus::InProgress));
    assert!(
        !cp.events_with_rule("CP-LEASE").is_empty(),
        "the re-offer is in the event log"
    );
    assert_eq!(
        cp.execution(&label)["jobs"][0]["deadline"],
        "+01:00:00",
        "re-dispatch keeps the deadline counted from the queueing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_window_zero_two_workers_race_and_exactly_one_acknowledges() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({"ackWindow": "0s"}));
    let label = cp.start_execution(CUSTOM, "short");
    let (a, b) = (cp.client(KEY1), cp.client(KEY2));

    let (job_a, nonce_a) = poll_custom(&a).await.expect("offered to the first poller");
    let (job_b, nonce_b) = poll_custom(&b)
        .await
        .expect("and to the second, until acknowledged");
    assert_eq!(job_a, job_b);
    let (ra, rb) = tokio::join!(
        a.acknowledge_job().job_id(&job_a).nonce(&nonce_a).send(),
        b.acknowledge_job().job_id(&job_b).nonce(&nonce_b).send()
    );
    let winners = [ra.is_ok(), rb.is_ok()].iter().filter(|w| **w).count();
    assert_eq!(winners, 1, "exactly one worker acknowledges");
    let loser = match (ra, rb) {
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
        _ => unreachable!("exactly one failed, checked above"),
    };
    assert_eq!(error_code(&loser), "InvalidNonceException");
    assert!(
        poll_custom(&a).await.is_none(),
        "an acknowledged job is offered to nobody"
    );
    assert_eq!(cp.execution(&label)["jobs"][0]["status"], "InProgress");
    let nonce_events = cp.events_with_rule("CP-NONCE");
    assert_eq!(nonce_events.len(), 1);
    assert_eq!(
        nonce_events[0].severity,
        sim_core::Severity::Warning,
        "losing a race is not a violation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_again_with_the_current_nonce_is_safe() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let (job, nonce) = poll_custom(&a).await.unwrap();
    for _ in 0..3 {
        let out = a
            .acknowledge_job()
            .job_id(&job)
            .nonce(&nonce)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), Some(&JobStatus::InProgress));
    }
    let history = cp.execution(&label)["jobs"][0]["history"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        history, 4,
        "Created, Queued, Dispatched, InProgress: repeats change nothing"
    );

    // After the job ends, a retried acknowledge answers the current status instead of failing.
    a.put_job_success_result()
        .job_id(&job)
        .send()
        .await
        .unwrap();
    let out = a
        .acknowledge_job()
        .job_id(&job)
        .nonce(&nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), Some(&JobStatus::Succeeded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_returns_at_most_max_batch_size_jobs_in_queue_order() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let labels: Vec<String> = (0..5)
        .map(|_| cp.start_execution(CUSTOM, "short"))
        .collect();
    let a = cp.client(KEY1);
    let out = a
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .max_batch_size(3)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = out.jobs().iter().map(|j| j.id().unwrap()).collect();
    let expected: Vec<String> = labels[..3]
        .iter()
        .map(|l| {
            cp.execution(l)["jobs"][0]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, expected);
    let rest = a
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .max_batch_size(10)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.jobs().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_tracker_attributes_held_jobs_to_the_polling_key() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let (job, nonce) = poll_custom(&a).await.unwrap();
    let snap = cp.sim.activity.snapshot();
    assert_eq!(snap.caller(KEY1.0).unwrap().held_jobs, 1);
    assert_eq!(snap.in_flight, 0);
    a.acknowledge_job()
        .job_id(&job)
        .nonce(&nonce)
        .send()
        .await
        .unwrap();
    a.put_job_success_result()
        .job_id(&job)
        .send()
        .await
        .unwrap();
    let snap = cp.sim.activity.snapshot();
    assert_eq!(
        snap.caller(KEY1.0).unwrap().held_jobs,
        0,
        "a result releases the job"
    );
    assert_eq!(
        snap.caller(KEY1.0).unwrap().requests,
        3,
        "poll, acknowledge, put"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_poll_is_answered_the_moment_a_job_is_queued() {
    let cp = TestCp::start_with(fake_codepipeline::Settings {
        park_polls: Some(Duration::from_secs(20)),
        ..Default::default()
    })
    .await;
    cp.register(CUSTOM, json!({}));
    let a = cp.client(KEY1);
    let poll = tokio::spawn(async move { poll_custom(&a).await });
    // Wait until the poll is parked (the tracker says so), then queue a job.
    loop {
        let parked = cp.sim.activity.notified();
        if cp.sim.activity.snapshot().parked == 1 {
            break;
        }
        parked.await;
    }
    assert_eq!(
        cp.sim.activity.snapshot().in_flight,
        0,
        "a parked poll does not count as in flight"
    );
    let label = cp.start_execution(CUSTOM, "short");
    let started = std::time::Instant::now();
    let got = poll
        .await
        .unwrap()
        .expect("the parked poll gets the new job");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered on queueing, not at the 20 s bound"
    );
    assert_eq!(
        got.0,
        cp.execution(&label)["jobs"][0]["id"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_parked_polls_woken_by_one_job_each_get_the_nonce_of_their_own_dispatch() {
    let cp = TestCp::start_with(fake_codepipeline::Settings {
        park_polls: Some(Duration::from_secs(20)),
        ..Default::default()
    })
    .await;
    cp.register(CUSTOM, json!({"ackWindow": "0s"}));
    let (a, b) = (cp.client(KEY1), cp.client(KEY2));
    let (a2, b2) = (a.clone(), b.clone());
    let pa = tokio::spawn(async move { poll_custom(&a2).await });
    let pb = tokio::spawn(async move { poll_custom(&b2).await });
    loop {
        let parked = cp.sim.activity.notified();
        if cp.sim.activity.snapshot().parked == 2 {
            break;
        }
        parked.await;
    }
    cp.start_execution(CUSTOM, "short");
    let (ja, na) = pa.await.unwrap().expect("A is offered the job");
    let (jb, nb) = pb
        .await
        .unwrap()
        .expect("B is offered the job too (ack window 0)");
    assert_eq!(ja, jb);
    assert_ne!(na, nb, "each dispatch has its own nonce");
    let ra = a.acknowledge_job().job_id(&ja).nonce(&na).send().await;
    let rb = b.acknowledge_job().job_id(&jb).nonce(&nb).send().await;
    assert_eq!(
        [ra.is_ok(), rb.is_ok()].iter().filter(|x| **x).count(),
        1,
        "exactly one of the two acknowledges"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_workers_racing_learn_their_own_nonce_and_only_one_acknowledges() {
    use tests::{CLIENT, THIRD_PARTY};
    let cp = TestCp::start().await;
    cp.register(THIRD_PARTY, json!({"ackWindow": "0s"}));
    cp.start_execution(THIRD_PARTY, "short");
    let (a, b) = (cp.client(KEY1), cp.client(KEY2));
    let mut jobs = Vec::new();
    for c in [&a, &b] {
        let out = c
            .poll_for_third_party_jobs()
            .action_type_id(sdk_type(THIRD_PARTY))
            .send()
            .await
            .unwrap();
        jobs.push(out.jobs()[0].job_id().unwrap().to_string());
    }
    let job = jobs[0].clone();
    assert_eq!(jobs[1], job);
    let nonce_of = |c: aws_sdk_codepipeline::Client, job: String| async move {
        let d = c
            .get_third_party_job_details()
            .job_id(job)
            .client_token(CLIENT.1)
            .send()
            .await
            .unwrap();
        d.job_details().unwrap().nonce().unwrap().to_string()
    };
    let na = nonce_of(a.clone(), job.clone()).await;
    let nb = nonce_of(b.clone(), job.clone()).await;
    assert_ne!(na, nb, "each worker is told the nonce of its own dispatch");
    let ack = |c: &aws_sdk_codepipeline::Client, n: &str| {
        c.acknowledge_third_party_job()
            .job_id(&job)
            .nonce(n)
            .client_token(CLIENT.1)
            .send()
    };
    let err = ack(&a, &na).await.unwrap_err();
    assert_eq!(
        error_code(&err),
        "InvalidNonceException",
        "A's dispatch was superseded by B's"
    );
    ack(&b, &nb).await.expect("B holds the latest dispatch");
    let err = ack(&a, &nb).await.unwrap_err();
    assert_eq!(
        error_code(&err),
        "InvalidNonceException",
        "a job acknowledged by B is not A's, even with B's nonce"
    );
    ack(&b, &nb)
        .await
        .expect("B's own repeated acknowledge stays safe");
}
