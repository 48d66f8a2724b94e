//! Throughput of the artifact store for 1 MB objects, through the real Rust SDK (`aws-sdk-s3`):
//! `cargo run -p tests --example store_throughput -- [CLIENTS] [SECONDS]`.
//!
//! CLIENTS tasks on a one-thread client runtime each PutObject a 1 MB object (the SDK adds its default
//! CRC32 checksum, which the store verifies) and GetObject it back, over and over, for SECONDS; the fake
//! runs on a runtime of its own, one worker per core. Prints operations/s, MB/s each way, latency
//! percentiles and the server's CPU time per operation.

use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use tests::{KEY1, SERVER_THREADS, cpu_seconds_of_threads, latency_summary, server_runtime};

const SIZE: usize = 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clients: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let (server, cp) = server_runtime();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let url = cp.url();
    client.block_on(async move {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(url)
            .force_path_style(true)
            .credentials_provider(Credentials::new(KEY1.0, KEY1.1, None, None, "bench"))
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(conf);
        s3.create_bucket().bucket("bench").send().await.expect("CreateBucket");
        let data = bytes::Bytes::from(vec![0x5au8; SIZE]);
        let cpu0 = cpu_seconds_of_threads(SERVER_THREADS);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (s3, data) = (s3.clone(), data.clone());
            tasks.push(tokio::spawn(async move {
                let (mut puts, mut gets) = (Vec::new(), Vec::new());
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let key = format!("c{c}/o{}", n % 16);
                    n += 1;
                    let t = Instant::now();
                    s3.put_object()
                        .bucket("bench")
                        .key(&key)
                        .body(ByteStream::from(data.clone()))
                        .send()
                        .await
                        .expect("PutObject");
                    puts.push(t.elapsed());
                    let t = Instant::now();
                    let got = s3.get_object().bucket("bench").key(&key).send().await.expect("GetObject");
                    let body = got.body.collect().await.expect("body").into_bytes();
                    assert_eq!(body.len(), SIZE, "the object came back whole");
                    gets.push(t.elapsed());
                }
                (puts, gets)
            }));
        }
        let (mut puts, mut gets) = (Vec::new(), Vec::new());
        for t in tasks {
            let (p, g) = t.await.expect("client task");
            puts.extend(p);
            gets.extend(g);
        }
        let real = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds_of_threads(SERVER_THREADS) - cpu0;
        let ops = (puts.len() + gets.len()) as f64;
        let (np, p50p, p99p) = latency_summary(puts).expect("some puts");
        let (ng, p50g, p99g) = latency_summary(gets).expect("some gets");
        println!(
            "artifact store, 1 MB objects, {clients} clients, {real:.1} s: {:.0} ops/s; PutObject {:.1} MB/s (p50 {:.1} ms, p99 {:.1} ms), GetObject {:.1} MB/s (p50 {:.1} ms, p99 {:.1} ms); server CPU {:.2} ms per op",
            ops / real,
            np as f64 / real,
            p50p.as_secs_f64() * 1e3,
            p99p.as_secs_f64() * 1e3,
            ng as f64 / real,
            p50g.as_secs_f64() * 1e3,
            p99g.as_secs_f64() * 1e3,
            cpu * 1e3 / ops
        );
    });
    drop(cp);
    server.shutdown_background();
}
