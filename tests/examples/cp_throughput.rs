//! Throughput of the fake CodePipeline for the job-worker cycle, measured with real SDK clients:
//! `cargo run -p tests --example cp_throughput -- [WORKERS] [SECONDS]`.
//!
//! Each worker loops poll -> acknowledge -> get details -> put final success (4 signed calls) on custom
//! jobs queued up front. Client and server share the machine's cores, so the requests/s figure is
//! end-to-end (SDK signing and server verifying included). The server runs on a runtime of its own (threads
//! named `cp-server`), so the CPU time it used is read from /proc apart from the clients': that gives its
//! cost per request and the rate that CPU alone would serve on the machine's cores, the server-only figure
//! the 20,000 requests/s target is about. Prints requests/s, per-call latency and the server's share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::ExecutionDetails;
use serde_json::json;
use tests::{
    CUSTOM, KEY1, KEY2, SERVER_THREADS, TestCp, cpu_seconds_of_threads, latency_summary, sdk_type,
    server_runtime,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // The server's runtime: as many workers as cores, like the binary; its threads are told apart by name.
    let (server, cp) = server_runtime();
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("sdk-client")
        .enable_all()
        .build()
        .expect("client runtime");
    clients.block_on(run(&cp, workers, seconds, cores));
    drop(cp);
    server.shutdown_background();
}

async fn run(cp: &TestCp, workers: usize, seconds: u64, cores: usize) {
    cp.register(CUSTOM, json!({}));
    let jobs = 60_000;
    for _ in 0..jobs {
        cp.start_execution(CUSTOM, "short");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let server_cpu_before = cpu_seconds_of_threads(SERVER_THREADS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = cp.client(if w % 2 == 0 { KEY1 } else { KEY2 });
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let polled = client
                    .poll_for_jobs()
                    .action_type_id(sdk_type(CUSTOM))
                    .send()
                    .await
                    .expect("poll");
                lat.push(t.elapsed());
                let Some(job) = polled.jobs().first() else {
                    break;
                };
                let id = job.id().unwrap_or_default().to_string();
                let t = Instant::now();
                client
                    .acknowledge_job()
                    .job_id(&id)
                    .nonce(job.nonce().unwrap_or_default())
                    .send()
                    .await
                    .expect("ack");
                lat.push(t.elapsed());
                let t = Instant::now();
                client
                    .get_job_details()
                    .job_id(&id)
                    .send()
                    .await
                    .expect("details");
                lat.push(t.elapsed());
                let t = Instant::now();
                client
                    .put_job_success_result()
                    .job_id(&id)
                    .execution_details(ExecutionDetails::builder().percent_complete(100).build())
                    .send()
                    .await
                    .expect("put");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds_of_threads(SERVER_THREADS) - server_cpu_before;
    let Some((calls, p50, p99)) = latency_summary(all) else {
        println!("no request completed in {elapsed:.1} s");
        return;
    };
    println!(
        "{workers} workers, {:.1} s: {} calls = {:.0} requests/s ({:.0} poll/ack/get/put cycles/s); latency p50 {:?}, p99 {:?}",
        elapsed,
        calls,
        calls as f64 / elapsed,
        calls as f64 / elapsed / 4.0,
        p50,
        p99
    );
    let per_request = server_cpu / calls as f64;
    println!(
        "server alone: {:.1} s CPU for {} requests = {:.1} us per request (SigV4 check, validation, engine, JSON); \
         {cores} cores of that = {:.0} requests/s server-only capacity (the clients used the rest: {:.0}% of the machine went to the server)",
        server_cpu,
        calls,
        per_request * 1e6,
        cores as f64 / per_request.max(1e-9),
        100.0 * server_cpu / (elapsed * cores as f64)
    );
}
