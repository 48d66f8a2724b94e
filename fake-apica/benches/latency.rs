//! Request latency on loopback: a fake-apica in process on 127.0.0.1:0 and a reqwest client on one
//! keep-alive connection, N sequential requests per operation; prints median, p90, p99 and max.
//!
//! `cargo bench -p fake-apica --bench latency` (release) or add `--profile dev` for a debug build;
//! `LATENCY_REQUESTS=N` changes the count (default 2000).

use std::time::{Duration, Instant};

use fake_apica::{ApicaConfig, FakeApica, Preset};
use serde_json::json;
use sim_core::Sim;

const TOKEN: &str = "bench-token";

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<28} n={:<5} median {:>7.1} us  p90 {:>7.1} us  p99 {:>7.1} us  max {:>8.1} us  ({:.0} req/s)",
        samples.len(),
        us(at(0.5)),
        us(at(0.9)),
        us(at(0.99)),
        us(samples[samples.len() - 1]),
        samples.len() as f64 / wall.as_secs_f64()
    );
}

async fn measure<F, Fut>(name: &str, n: usize, mut request: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    // Warm up the connection and the code paths first.
    for i in 0..50 {
        let _ = request(n + i).await.expect("warm-up request").bytes().await;
    }
    let mut samples = Vec::with_capacity(n);
    let wall = Instant::now();
    for i in 0..n {
        let started = Instant::now();
        let response = request(i).await.expect("request");
        assert!(
            response.status().is_success(),
            "{name}: {}",
            response.status()
        );
        let _ = response.bytes().await;
        samples.push(started.elapsed());
    }
    report(name, samples, wall.elapsed());
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("LATENCY_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let sim = Sim::manual();
    let apica = FakeApica::new(
        sim,
        ApicaConfig::new(
            TOKEN,
            [Preset::passed("soak", Duration::from_secs(6 * 3600))],
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = apica.clone();
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
    let client = reqwest::Client::new();
    println!(
        "fake-apica loopback latency, {n} sequential requests each, one keep-alive connection"
    );

    measure("POST /v1/loadtests (new)", n, |i| {
        client
            .post(format!("{base}/v1/loadtests"))
            .bearer_auth(TOKEN)
            .json(&json!({"preset": "soak", "runnableFile": format!("f-{i}.jmx"), "idempotencyKey": format!("k-{i}")}))
            .send()
    })
    .await;
    let job = fake_apica::DEFAULT_FIRST_JOB_ID;
    measure("GET /v1/loadtests/{id}", n, |_| {
        client
            .get(format!("{base}/v1/loadtests/{job}"))
            .bearer_auth(TOKEN)
            .send()
    })
    .await;
    measure("GET /jobs/{id} (HTML)", n, |_| {
        client.get(format!("{base}/jobs/{job}")).send()
    })
    .await;
}
