//! Server-side throughput of the fake CodePipeline, with a client that costs little:
//! `cargo run -p tests --example cp_server_load -- [CONNECTIONS] [SECONDS]`.
//!
//! `cp_throughput` drives the fake with real SDK clients, whose signing and retry machinery takes most of
//! the two cores. Here each request is signed once, up front, with aws-sigv4, and then sent again and again
//! over keep-alive HTTP/1.1 connections (hyper's client, one request at a time per connection), so almost
//! all the CPU goes to the server. Every request still takes the server's whole path: SigV4 verification,
//! model validation of the JSON body, the engine under its lock, the JSON answer. The mix is the
//! read-mostly part of a worker's cycle that can be repeated without changing state: PollForJobs on a
//! queue with nothing for the caller, GetJobDetails and AcknowledgeJob (the same worker again: the
//! current status) on a job the caller holds. Prints requests/s, latency percentiles and the server's CPU
//! time per request.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use fake_codepipeline::Owner;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tests::{
    CUSTOM, KEY1, SERVER_THREADS, TestCp, cpu_seconds_of_threads, latency_summary, server_runtime,
    sigv4_headers,
};

/// One signed `POST /` of `operation` with `body`, ready to send any number of times.
fn signed(host: &str, operation: &str, body: serde_json::Value) -> (Vec<(String, String)>, Bytes) {
    let body = Bytes::from(body.to_string());
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("host".to_string(), host.to_string()),
        (
            "x-amz-target".to_string(),
            format!("CodePipeline_20150709.{operation}"),
        ),
    ];
    let auth = sigv4_headers(KEY1, SystemTime::now(), &headers, &body);
    headers.extend(auth);
    (headers, body)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let connections: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (server, cp) = server_runtime();
    // The client: one thread, so it can never take more than one core from the server.
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    client.block_on(run(&cp, connections, seconds, cores));
    drop(cp);
    server.shutdown_background();
}

async fn run(cp: &TestCp, connections: usize, seconds: u64, cores: usize) {
    // PresetName queryable: the load's polls name a preset with nothing queued, so they come back empty.
    cp.register(
        CUSTOM,
        json!({"configurationProperties": tests::apica_properties(true)}),
    );
    cp.start_execution(CUSTOM, "held");
    let type_id: fake_codepipeline::ActionTypeId = CUSTOM.parse().expect("action type");
    let jobs = cp
        .fake
        .core()
        .poll(
            Some(KEY1.0),
            Owner::Custom,
            &type_id,
            1,
            Some(("PresetName", "held")),
        )
        .expect("poll");
    let job = jobs.first().expect("the job just queued");
    cp.fake
        .core()
        .acknowledge(Some(KEY1.0), Owner::Custom, &job.job_id, &job.nonce, None)
        .expect("acknowledge");

    let host = cp.addr.to_string();
    let action_type =
        json!({"category": "Test", "owner": "Custom", "provider": "ApicaLoadtest", "version": "1"});
    let requests = vec![
        signed(
            &host,
            "PollForJobs",
            json!({"actionTypeId": action_type, "maxBatchSize": 1, "queryParam": {"PresetName": "nothing-queued"}}),
        ),
        signed(&host, "GetJobDetails", json!({"jobId": job.job_id})),
        signed(
            &host,
            "AcknowledgeJob",
            json!({"jobId": job.job_id, "nonce": job.nonce}),
        ),
    ];

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let server_cpu_before = cpu_seconds_of_threads(SERVER_THREADS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let requests = requests.clone();
        let addr = cp.addr;
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                    .await
                    .expect("HTTP/1.1 handshake");
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                let (headers, body) = &requests[i % requests.len()];
                i += 1;
                let mut req = Request::post(format!("http://{host}/"));
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                let req = req.body(Full::new(body.clone())).expect("request");
                let t = Instant::now();
                let resp = sender.send_request(req).await.expect("send");
                let status = resp.status();
                let bytes = resp.into_body().collect().await.expect("body").to_bytes();
                latencies.push(t.elapsed());
                assert!(
                    status.is_success(),
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("connection task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds_of_threads(SERVER_THREADS) - server_cpu_before;
    let Some((calls, p50, p99)) = latency_summary(all) else {
        println!("no request completed in {elapsed:.1} s");
        return;
    };
    println!(
        "{connections} connections, {elapsed:.1} s: {} requests = {:.0} requests/s (PollForJobs, GetJobDetails, AcknowledgeJob); latency p50 {:?}, p99 {:?}",
        calls,
        calls as f64 / elapsed,
        p50,
        p99
    );
    println!(
        "server: {server_cpu:.1} s CPU = {:.1} us per request, {:.0}% of {cores} cores",
        server_cpu / calls as f64 * 1e6,
        100.0 * server_cpu / (elapsed * cores as f64)
    );
}
