//! The awsJson1.1 wire and SigV4 (PROTOCOL.md, "Wire"): who is let in, how refusals look, what every
//! success carries. Through the real SDK where it can express the case, and by hand over raw HTTP/1.1
//! (signed with the minimal SigV4 signer below) where it cannot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_codepipeline::operation::RequestId;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use fake_codepipeline::{Owner, Settings};
use serde_json::{Value, json};
use tests::{CLIENT, CUSTOM, KEY1, THIRD_PARTY, TestCp, error_code, error_message, sdk_type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TARGET: &str = "CodePipeline_20150709.";
const MIB: usize = 1024 * 1024;

// ----- raw HTTP -----

/// How a raw request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// No Authorization header at all.
    None,
    /// Signed with SigV4 with `key` as if the client's clock read `at`.
    Signed {
        key: (&'a str, &'a str),
        at: SystemTime,
    },
    /// This Authorization header verbatim (plus an `X-Amz-Date` of now).
    Header(&'a str),
}

fn signed_now<'a>(key: (&'a str, &'a str)) -> Auth<'a> {
    Auth::Signed {
        key,
        at: SystemTime::now(),
    }
}

/// A response read off the socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// Header names lower-cased.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn error_type(&self) -> String {
        self.json()["__type"]
            .as_str()
            .unwrap_or("<no __type>")
            .to_string()
    }

    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// `POST /` with `target` (`None`: no X-Amz-Target header) and `body`, as one HTTP/1.1 exchange.
async fn post(addr: SocketAddr, target: Option<&str>, body: &[u8], auth: Auth<'_>) -> RawResponse {
    let host = addr.to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        ("host".into(), host.clone()),
    ];
    if let Some(t) = target {
        headers.push(("x-amz-target".into(), t.to_string()));
    }
    match auth {
        Auth::None => {}
        Auth::Header(h) => {
            headers.push(("x-amz-date".into(), amz_date(SystemTime::now())));
            headers.push(("authorization".into(), h.to_string()));
        }
        Auth::Signed { key, at } => {
            let date = amz_date(at);
            headers.push(("x-amz-date".into(), date.clone()));
            headers.sort();
            let authorization = sigv4_authorization(key, &date, &headers, body);
            headers.push(("authorization".into(), authorization));
        }
    }
    raw_exchange(addr, "POST", &headers, body).await
}

/// Writes one request with `Connection: close` and reads the whole response. The body is written from
/// another task so a server that answers before reading everything (413) cannot deadlock the test.
async fn raw_exchange(
    addr: SocketAddr,
    method: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the fake");
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!("{method} / HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    let writer = tokio::spawn(async move {
        // The server may stop reading once it has refused the request; a broken pipe then is fine.
        let _ = wr.write_all(&bytes).await;
        let _ = wr.flush().await;
        wr
    });
    let mut raw = Vec::new();
    rd.read_to_end(&mut raw).await.expect("read the response");
    drop(writer.await);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

// ----- a minimal SigV4 signer (tests has no aws-sigv4 dependency; the fake verifies with aws-sigv4) -----

/// `YYYYMMDDTHHMMSSZ` of `t`, whole seconds.
fn amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    let iso = DateTime::from_secs(secs as i64)
        .fmt(Format::DateTime)
        .expect("format date");
    iso.replace(['-', ':'], "")
}

/// The Authorization header for a POST / with these (sorted, lower-case) headers, region us-east-1.
fn sigv4_authorization(
    key: (&str, &str),
    amz_date: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> String {
    let day = &amz_date[..8];
    let scope = format!("{day}/us-east-1/codepipeline/aws4_request");
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let mut canonical = String::from("POST\n/\n\n");
    for (k, v) in headers {
        canonical.push_str(&format!("{k}:{}\n", v.trim()));
    }
    canonical.push_str(&format!("\n{signed}\n{}", hex(&sha256(body))));
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&sha256(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{}", key.1).as_bytes(), day.as_bytes());
    let k_region = hmac(&k_date, b"us-east-1");
    let k_service = hmac(&k_region, b"codepipeline");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        key.0
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(data);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

/// FIPS 180-4 SHA-256.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

// ----- helpers on the fake -----

/// Starts an execution of `action_type` and takes its first job to InProgress through the engine.
fn in_progress_job(cp: &TestCp, action_type: &str, preset: &str) -> String {
    cp.start_execution(action_type, preset);
    let owner = if action_type.contains("/ThirdParty/") {
        Owner::ThirdParty
    } else {
        Owner::Custom
    };
    let id = action_type.parse().expect("action type");
    let query = (owner == Owner::Custom).then_some(("PresetName", preset));
    let jobs = cp
        .fake
        .core()
        .poll(Some(KEY1.0), owner, &id, 1, query)
        .expect("poll");
    assert_eq!(jobs.len(), 1, "one job queued for {preset}");
    let token = (owner == Owner::ThirdParty).then_some(CLIENT.1);
    cp.fake
        .core()
        .acknowledge(Some(KEY1.0), owner, &jobs[0].job_id, &jobs[0].nonce, token)
        .expect("acknowledge");
    jobs[0].job_id.clone()
}

fn assert_real_time_date(resp: &RawResponse, what: &str) {
    let date = resp
        .header("date")
        .unwrap_or_else(|| panic!("{what}: no Date header"));
    let parsed = DateTime::from_str(date, Format::HttpDate)
        .unwrap_or_else(|e| panic!("{what}: Date {date:?}: {e}"));
    let now = DateTime::from(SystemTime::now());
    let off = (parsed.secs() - now.secs()).abs();
    assert!(
        off <= 60,
        "{what}: Date {date} is {off} s from real time; it must be real time, never simulated"
    );
}

fn assert_success_headers(resp: &RawResponse, what: &str) {
    assert_eq!(resp.status, 200, "{what}: {resp:?}");
    assert!(
        resp.header("x-amzn-requestid")
            .is_some_and(|v| !v.is_empty()),
        "{what}: x-amzn-RequestId missing"
    );
    assert_eq!(
        resp.header("content-type"),
        Some("application/x-amz-json-1.1"),
        "{what}"
    );
    assert_real_time_date(resp, what);
}

/// The shape of every error: a JSON body with `__type` and `message`, the same name in `X-Amzn-Errortype`.
fn assert_error_shape(resp: &RawResponse, what: &str) {
    assert!(
        (400..600).contains(&resp.status),
        "{what}: status {}",
        resp.status
    );
    let body = resp.json();
    let ty = body["__type"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no __type in {body}"));
    assert!(!ty.is_empty(), "{what}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message in {body}"
    );
    assert_eq!(
        resp.header("x-amzn-errortype"),
        Some(ty),
        "{what}: X-Amzn-Errortype must equal __type"
    );
    assert!(
        resp.header("x-amzn-requestid").is_some(),
        "{what}: x-amzn-RequestId missing"
    );
    assert_real_time_date(resp, what);
}

// ----- SigV4 through the real SDK -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_call_with_an_unknown_access_key_is_unrecognized_client() {
    let cp = TestCp::start().await;
    let err = cp
        .client(("AKIDNOBODYKNOWS", "some-secret"))
        .list_pipelines()
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "UnrecognizedClientException");
    assert!(
        error_message(&err).contains("AKIDNOBODYKNOWS"),
        "{}",
        error_message(&err)
    );
    let refused = cp
        .sim
        .events
        .all()
        .into_iter()
        .filter(|e| e.kind == "auth_refused")
        .count();
    assert_eq!(refused, 1, "the refusal is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_call_signed_with_the_wrong_secret_is_invalid_signature() {
    let cp = TestCp::start().await;
    let err = cp
        .client((KEY1.0, "not-the-secret"))
        .list_pipelines()
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidSignatureException");
    assert!(
        error_message(&err).contains("signature"),
        "{}",
        error_message(&err)
    );
    // The right secret gets in, and the request id reaches the SDK.
    let ok = cp.client(KEY1).list_pipelines().send().await.unwrap();
    assert!(ok.request_id().is_some_and(|id| !id.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_signature_changes_no_job_state() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "p1");
    let before = cp.execution(&label);
    let bad = cp.client((KEY1.0, "not-the-secret"));
    let err = bad
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidSignatureException");
    assert_eq!(
        cp.execution(&label),
        before,
        "a poll refused at the door dispatches nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_skew_correction_is_not_misled_by_simulated_time() {
    // The SDK measures its clock skew from every response's `Date` and signs the next request at
    // now + skew. Were `Date` simulated time (six hours ahead here), the second call would be signed six
    // hours in the future and refused as "not yet current".
    let cp = TestCp::start().await;
    cp.advance(Duration::from_secs(6 * 3600));
    let client = cp.client_with(
        KEY1,
        aws_config::retry::RetryConfig::standard().with_max_attempts(3),
    );
    for call in 1..=3 {
        let out = client.list_pipelines().send().await;
        assert!(
            out.is_ok(),
            "call {call}: {:?}",
            out.err().map(|e| error_message(&e))
        );
    }
    // A genuinely bad signature is not mistaken for skew: one refusal, no retry.
    let bad = cp.client_with(
        (KEY1.0, "not-the-secret"),
        aws_config::retry::RetryConfig::standard().with_max_attempts(3),
    );
    let err = bad.list_pipelines().send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidSignatureException");
    let refused = cp
        .sim
        .events
        .all()
        .into_iter()
        .filter(|e| e.kind == "auth_refused")
        .count();
    assert_eq!(
        refused, 1,
        "the SDK retried a signature error as if it were clock skew"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_call_with_session_credentials_or_another_region_is_accepted() {
    // The fake verifies with the request's own credential scope and session token.
    let cp = TestCp::start().await;
    let conf = aws_sdk_codepipeline::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_codepipeline::config::Region::new("eu-west-1"))
        .endpoint_url(cp.url())
        .credentials_provider(aws_credential_types::Credentials::new(
            KEY1.0,
            KEY1.1,
            Some("session-token-from-sts".to_string()),
            None,
            "tests",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_codepipeline::Client::from_conf(conf);
    client.list_pipelines().send().await.unwrap();
}

// ----- SigV4 by hand -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_signed_request_is_accepted() {
    // Proves the test's own signer agrees with the fake's aws-sigv4 verification, so the refusals below
    // are about the one thing each changes.
    let cp = TestCp::start().await;
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        b"{}",
        signed_now(KEY1),
    )
    .await;
    assert_success_headers(&resp, "ListPipelines");
    assert_eq!(resp.json(), json!({"pipelines": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_authorization_is_missing_authentication_token() {
    let cp = TestCp::start().await;
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        b"{}",
        Auth::None,
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_type(), "MissingAuthenticationTokenException");
    assert_error_shape(&resp, "unsigned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_authorization_is_incomplete_signature() {
    let cp = TestCp::start().await;
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        b"{}",
        Auth::Header("AWS4-HMAC-SHA256 nonsense"),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_type(), "IncompleteSignatureException");
    assert_error_shape(&resp, "malformed Authorization");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_signed_ten_minutes_ago_has_an_expired_signature() {
    let cp = TestCp::start().await;
    let at = SystemTime::now() - Duration::from_secs(600);
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        b"{}",
        Auth::Signed { key: KEY1, at },
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_type(), "InvalidSignatureException");
    assert!(
        resp.message().starts_with("Signature expired"),
        "{}",
        resp.message()
    );
    assert_error_shape(&resp, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_signed_ten_minutes_ahead_is_not_yet_current() {
    let cp = TestCp::start().await;
    let at = SystemTime::now() + Duration::from_secs(600);
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        b"{}",
        Auth::Signed { key: KEY1, at },
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_type(), "InvalidSignatureException");
    assert!(
        resp.message().starts_with("Signature not yet current"),
        "{}",
        resp.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skew_window_is_real_time_not_simulated_time() {
    let cp = TestCp::start().await;
    // Inside the 5-minute window either way: accepted.
    for off in [-240i64, 240] {
        let at = if off < 0 {
            SystemTime::now() - Duration::from_secs(off.unsigned_abs())
        } else {
            SystemTime::now() + Duration::from_secs(off as u64)
        };
        let resp = post(
            cp.addr,
            Some(&format!("{TARGET}ListPipelines")),
            b"{}",
            Auth::Signed { key: KEY1, at },
        )
        .await;
        assert_eq!(resp.status, 200, "signed {off} s off: {:?}", resp.message());
    }
    // Six simulated hours later, a request signed with the real time is still current.
    cp.advance(Duration::from_secs(6 * 3600));
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        b"{}",
        signed_now(KEY1),
    )
    .await;
    assert_success_headers(&resp, "after 6 simulated hours");
}

// ----- framing -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_target_is_unknown_operation() {
    let cp = TestCp::start().await;
    for target in [
        Some(format!("{TARGET}DoesNotExist")),
        Some(format!("{TARGET}DeletePipeline")), // in the model, not in the fake
        Some("SomethingElse_20200101.ListPipelines".to_string()),
        None,
    ] {
        let resp = post(cp.addr, target.as_deref(), b"{}", signed_now(KEY1)).await;
        assert_eq!(resp.status, 400, "{target:?}");
        assert_eq!(
            resp.error_type(),
            "UnknownOperationException",
            "{target:?}: {}",
            resp.message()
        );
        assert_error_shape(&resp, &format!("target {target:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_serialization_exception() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "p1");
    let before = cp.execution(&label);
    for body in [
        &b"{\"actionTypeId\":"[..],
        b"not json",
        b"[1,2]",
        b"{\"maxBatchSize\": \"many\"}",
    ] {
        let resp = post(
            cp.addr,
            Some(&format!("{TARGET}PollForJobs")),
            body,
            signed_now(KEY1),
        )
        .await;
        assert_eq!(resp.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(
            resp.error_type(),
            "SerializationException",
            "{:?}: {}",
            String::from_utf8_lossy(body),
            resp.message()
        );
        assert_error_shape(&resp, "malformed JSON");
    }
    assert_eq!(cp.execution(&label), before, "nothing was dispatched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_body_works_for_an_operation_without_required_input() {
    let cp = TestCp::start().await;
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        b"",
        signed_now(KEY1),
    )
    .await;
    assert_success_headers(&resp, "ListPipelines with an empty body");
    assert_eq!(resp.json(), json!({"pipelines": []}));
    // The same through the SDK.
    let out = cp.client(KEY1).list_pipelines().send().await.unwrap();
    assert!(out.pipelines().is_empty());
    // An empty body is `{}`: an operation with required input names what is missing.
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}PollForJobs")),
        b"",
        signed_now(KEY1),
    )
    .await;
    assert_eq!(resp.error_type(), "ValidationException");
    assert!(
        resp.message().contains("actionTypeId"),
        "{}",
        resp.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_one_mebibyte_is_413_with_a_json_error() {
    let cp = TestCp::start().await;
    let pad = |n: usize| {
        // A JSON object of exactly n bytes.
        let overhead = br#"{"nextToken":""}"#.len();
        format!(r#"{{"nextToken":"{}"}}"#, "x".repeat(n - overhead)).into_bytes()
    };
    let big = pad(MIB + 1);
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        &big,
        signed_now(KEY1),
    )
    .await;
    assert_eq!(resp.status, 413, "{}", resp.message());
    assert_error_shape(&resp, "1 MiB + 1 byte");
    // Exactly the limit passes the size check (and fails validation on nextToken's length instead).
    let at_limit = pad(MIB);
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        &at_limit,
        signed_now(KEY1),
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.message());
    assert_eq!(resp.error_type(), "ValidationException");
    // The fake is still serving.
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}ListPipelines")),
        b"{}",
        signed_now(KEY1),
    )
    .await;
    assert_success_headers(&resp, "after a 413");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_type_message_and_a_matching_errortype_header() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let t = |op: &str| format!("{TARGET}{op}");
    let unknown_job = json!({"jobId": "00000000-0000-4000-8000-000000000000"}).to_string();
    let cases: Vec<(&str, RawResponse)> = vec![
        ("unsigned", post(cp.addr, Some(&t("ListPipelines")), b"{}", Auth::None).await),
        ("unknown key", post(cp.addr, Some(&t("ListPipelines")), b"{}", signed_now(("AKIDNOBODY", "x"))).await),
        ("wrong secret", post(cp.addr, Some(&t("ListPipelines")), b"{}", signed_now((KEY1.0, "x"))).await),
        ("unknown target", post(cp.addr, Some(&t("Nope")), b"{}", signed_now(KEY1)).await),
        ("malformed JSON", post(cp.addr, Some(&t("ListPipelines")), b"{", signed_now(KEY1)).await),
        ("validation", post(cp.addr, Some(&t("GetJobDetails")), b"{}", signed_now(KEY1)).await),
        ("job not found", post(cp.addr, Some(&t("GetJobDetails")), unknown_job.as_bytes(), signed_now(KEY1)).await),
        (
            "action type not found",
            post(
                cp.addr,
                Some(&t("PollForJobs")),
                json!({"actionTypeId": {"category": "Test", "owner": "Custom", "provider": "Nope", "version": "1"}})
                    .to_string()
                    .as_bytes(),
                signed_now(KEY1),
            )
            .await,
        ),
        ("too large", post(cp.addr, Some(&t("ListPipelines")), &vec![b' '; MIB + 10], signed_now(KEY1)).await),
        (
            "GET /",
            raw_exchange(cp.addr, "GET", &[("host".to_string(), cp.addr.to_string())], b"").await,
        ),
    ];
    for (what, resp) in &cases {
        assert_error_shape(resp, what);
    }
    let types: Vec<String> = cases.iter().map(|(_, r)| r.error_type()).collect();
    assert_eq!(
        types,
        [
            "MissingAuthenticationTokenException",
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "UnknownOperationException",
            "SerializationException",
            "ValidationException",
            "JobNotFoundException",
            "ActionTypeNotFoundException",
            "RequestEntityTooLargeException",
            "UnknownOperationException",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_success_carries_request_id_content_type_and_a_real_time_date() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    cp.register(THIRD_PARTY, json!({}));
    // Six simulated hours in: the Date header must still be real time (SDKs correct their skew from it).
    cp.advance(Duration::from_secs(6 * 3600));
    let custom = in_progress_job(&cp, CUSTOM, "p1");
    cp.start_execution(THIRD_PARTY, "p2");
    let t = |op: &str| format!("{TARGET}{op}");
    let custom_type =
        json!({"category": "Test", "owner": "Custom", "provider": "ApicaLoadtest", "version": "1"});
    let tp_type = json!({"category": "Test", "owner": "ThirdParty", "provider": "ApicaLoadtest", "version": "1"});
    let mut ids = Vec::new();
    let calls: Vec<(String, Value)> = vec![
        (t("ListPipelines"), json!({})),
        (t("ListActionTypes"), json!({})),
        (
            t("PollForJobs"),
            json!({"actionTypeId": custom_type, "queryParam": {"PresetName": "none"}}),
        ),
        (t("PollForThirdPartyJobs"), json!({"actionTypeId": tp_type})),
        (t("GetJobDetails"), json!({"jobId": custom})),
        (
            t("PutJobSuccessResult"),
            json!({"jobId": custom, "continuationToken": "t1"}),
        ),
    ];
    for (target, body) in calls {
        let resp = post(
            cp.addr,
            Some(&target),
            body.to_string().as_bytes(),
            signed_now(KEY1),
        )
        .await;
        assert_success_headers(&resp, &target);
        ids.push(
            resp.header("x-amzn-requestid")
                .unwrap_or_default()
                .to_string(),
        );
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "request ids are unique: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_result_success_answers_an_empty_body() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    cp.register(THIRD_PARTY, json!({}));
    let t = |op: &str| format!("{TARGET}{op}");
    let c1 = in_progress_job(&cp, CUSTOM, "p1");
    let c2 = in_progress_job(&cp, CUSTOM, "p2");
    let tp1 = in_progress_job(&cp, THIRD_PARTY, "p3");
    let tp2 = in_progress_job(&cp, THIRD_PARTY, "p4");
    let failure = json!({"type": "JobFailed", "message": "load test failed"});
    let calls = [
        (
            t("PutJobSuccessResult"),
            json!({"jobId": c1, "executionDetails": {"percentComplete": 100}}),
        ),
        (
            t("PutJobFailureResult"),
            json!({"jobId": c2, "failureDetails": failure}),
        ),
        (
            t("PutThirdPartyJobSuccessResult"),
            json!({"jobId": tp1, "clientToken": CLIENT.1, "continuationToken": "t"}),
        ),
        (
            t("PutThirdPartyJobFailureResult"),
            json!({"jobId": tp2, "clientToken": CLIENT.1, "failureDetails": failure}),
        ),
    ];
    for (target, body) in calls {
        let resp = post(
            cp.addr,
            Some(&target),
            body.to_string().as_bytes(),
            signed_now(KEY1),
        )
        .await;
        assert_success_headers(&resp, &target);
        assert!(
            resp.body.is_empty(),
            "{target}: body {:?}",
            String::from_utf8_lossy(&resp.body)
        );
    }
    let statuses: Vec<Value> = (1..=4)
        .map(|n| cp.execution(&format!("e-{n}"))["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [
            json!("Succeeded"),
            json!("Failed"),
            json!("InProgress"),
            json!("Failed")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_verification_off_an_unsigned_put_result_answers_an_empty_body() {
    let cp = TestCp::start_with(Settings {
        verify_signatures: false,
        ..Default::default()
    })
    .await;
    cp.register(CUSTOM, json!({}));
    let job = in_progress_job(&cp, CUSTOM, "p1");
    let body = json!({"jobId": job, "executionDetails": {"percentComplete": 100}}).to_string();
    let resp = post(
        cp.addr,
        Some(&format!("{TARGET}PutJobSuccessResult")),
        body.as_bytes(),
        Auth::None,
    )
    .await;
    assert_success_headers(&resp, "unsigned PutJobSuccessResult");
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("content-length"), Some("0"));
    assert_eq!(cp.execution("e-1")["status"], "Succeeded");
}

#[test]
fn sha256_and_hmac_match_the_published_vectors() {
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // RFC 4231 test case 2.
    assert_eq!(
        hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
