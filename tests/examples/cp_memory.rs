//! Memory of the fake CodePipeline with many action executions in flight:
//! `cargo run -p tests --example cp_memory -- [EXECUTIONS]`.
//!
//! Starts EXECUTIONS custom action executions (each a synthetic pipeline with its first job queued, a
//! deadline timer and an action-timeout timer), dispatches and acknowledges every job through the engine,
//! and prints the process's resident set size before and after.

use fake_codepipeline::Owner;
use serde_json::json;
use tests::{CUSTOM, KEY1, TestCp};

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let before = rss_mb();
    for _ in 0..n {
        cp.start_execution(CUSTOM, "short");
    }
    let ty = CUSTOM.parse().expect("type");
    let core = cp.fake.core();
    let mut acked = 0;
    loop {
        let jobs = core
            .poll(Some(KEY1.0), Owner::Custom, &ty, 100, None)
            .expect("poll");
        if jobs.is_empty() {
            break;
        }
        for d in jobs {
            core.acknowledge(Some(KEY1.0), Owner::Custom, &d.job_id, &d.nonce, None)
                .expect("ack");
            acked += 1;
        }
    }
    let after = rss_mb();
    println!(
        "{n} action executions in flight ({acked} jobs acknowledged, {} events logged): RSS {after:.1} MB ({before:.1} MB before, {:.1} KB per execution)",
        cp.sim.events.last_seq(),
        (after - before) * 1024.0 / n as f64
    );
}
