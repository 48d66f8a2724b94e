//! Throughput of the fake CodePipeline for the job-worker cycle, measured with real SDK clients:
//! `cargo run -p tests --example cp_throughput -- [WORKERS] [SECONDS]`.
//!
//! Each worker loops poll -> acknowledge -> get details -> put final success (4 signed calls) on custom
//! jobs queued up front. Client and server share the machine's cores, so the figure is end-to-end
//! (signing and verifying included), not the server alone. Prints requests/s and per-call latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::ExecutionDetails;
use serde_json::json;
use tests::{CUSTOM, KEY1, KEY2, TestCp, sdk_type};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let jobs = 60_000;
    for _ in 0..jobs {
        cp.start_execution(CUSTOM, "short");
    }
    let stop = Arc::new(AtomicBool::new(false));
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
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{workers} workers, {:.1} s: {} calls = {:.0} requests/s ({:.0} poll/ack/get/put cycles/s); latency p50 {:?}, p99 {:?}",
        elapsed,
        all.len(),
        all.len() as f64 / elapsed,
        all.len() as f64 / elapsed / 4.0,
        pct(0.50),
        pct(0.99)
    );
}
