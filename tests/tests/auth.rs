//! The awsJson1.1 wire and SigV4 (`docs/protocol.md`, "Wire"): who is let in, how refusals look, what every
//! success carries. Through the real SDK where it can express the case, and by hand over raw HTTP/1.1
//! (signed with `aws-sigv4`, the signer the SDK itself uses, at a chosen client time) where it cannot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_codepipeline::operation::RequestId;
use aws_smithy_async::time::TimeSource;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use fake_codepipeline::{Owner, Settings};
use serde_json::{Value, json};
use tests::{
    CLIENT, CUSTOM, KEY1, THIRD_PARTY, TestCp, error_code, error_message, sdk_type, sigv4_headers,
};
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
            let signing = sigv4_headers(key, at, &headers, body);
            headers.extend(signing);
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

// ----- SigV4 signing with aws-sigv4 (the fake verifies with the same crate) -----

/// `YYYYMMDDTHHMMSSZ` of `t`, whole seconds (the `X-Amz-Date` sent with a verbatim `Authorization`).
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

// ----- helpers on the fake -----

/// The custom type with PresetName queryable: these tests poll it by preset (`queryParam`).
fn register_custom(cp: &TestCp) {
    cp.register(
        CUSTOM,
        json!({"configurationProperties": tests::apica_properties(true)}),
    );
}

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
    register_custom(&cp);
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

/// A client clock `by` behind (`ahead: false`) or ahead of real time.
#[derive(Debug, Clone, Copy)]
struct SkewedClock {
    ahead: bool,
    by: Duration,
}

impl TimeSource for SkewedClock {
    fn now(&self) -> SystemTime {
        if self.ahead {
            SystemTime::now() + self.by
        } else {
            SystemTime::now() - self.by
        }
    }
}

const TEN_MINUTES: Duration = Duration::from_secs(600);

/// A real SDK client signing with KEY1 on `clock`, with skew correction on or off.
fn skewed_client(
    cp: &TestCp,
    clock: SkewedClock,
    correct_skew: bool,
    retry: aws_config::retry::RetryConfig,
) -> aws_sdk_codepipeline::Client {
    let conf = aws_sdk_codepipeline::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_codepipeline::config::Region::new("us-east-1"))
        .endpoint_url(cp.url())
        .credentials_provider(Credentials::new(KEY1.0, KEY1.1, None, None, "tests"))
        .time_source(clock)
        .disable_clock_skew_correction(!correct_skew)
        .retry_config(retry)
        .build();
    aws_sdk_codepipeline::Client::from_conf(conf)
}

fn auth_refusals(cp: &TestCp) -> usize {
    cp.sim
        .events
        .all()
        .into_iter()
        .filter(|e| e.kind == "auth_refused")
        .count()
}

/// Requests from KEY1 that got past authentication.
fn admitted_requests(cp: &TestCp) -> u64 {
    cp.sim
        .activity
        .snapshot()
        .caller(KEY1.0)
        .map_or(0, |c| c.requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_with_a_skewed_clock_and_no_skew_correction_is_refused_once() {
    let cp = TestCp::start().await;
    let cases = [
        (false, "Signature expired"),
        (true, "Signature not yet current"),
    ];
    let mut refused = 0;
    for (ahead, expected) in cases {
        let clock = SkewedClock {
            ahead,
            by: TEN_MINUTES,
        };
        // Retries off, and (correction being off) standard retries must not retry it either: the
        // SDK's skew retry classifier only fires on a skew its correction interceptor measured.
        for retry in [
            aws_config::retry::RetryConfig::disabled(),
            aws_config::retry::RetryConfig::standard().with_max_attempts(3),
        ] {
            let what = format!(
                "client 10 min {}, {retry:?}",
                if ahead { "ahead" } else { "behind" }
            );
            let err = skewed_client(&cp, clock, false, retry)
                .list_pipelines()
                .send()
                .await
                .unwrap_err();
            assert_eq!(error_code(&err), "InvalidSignatureException", "{what}");
            assert!(
                error_message(&err).starts_with(expected),
                "{what}: {}",
                error_message(&err)
            );
            refused += 1;
            assert_eq!(auth_refusals(&cp), refused, "{what}: exactly one request");
        }
    }
    assert_eq!(admitted_requests(&cp), 0, "nothing got past the door");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_with_a_skewed_clock_recovers_through_skew_correction_and_a_retry() {
    // aws-runtime's ServiceClockSkewInterceptor measures skew from the refusal's `Date` (real time)
    // and its ServiceClockSkewClassifier retries InvalidSignatureException when that skew exceeds
    // 4 minutes; the retry is signed at now + skew. So: one refusal, then success, and the skew is
    // kept on the client, so its next call is signed right the first time.
    for ahead in [false, true] {
        let cp = TestCp::start().await;
        let what = if ahead {
            "10 min ahead"
        } else {
            "10 min behind"
        };
        let client = skewed_client(
            &cp,
            SkewedClock {
                ahead,
                by: TEN_MINUTES,
            },
            true,
            aws_config::retry::RetryConfig::standard().with_max_attempts(3),
        );
        let out = client.list_pipelines().send().await;
        assert!(
            out.is_ok(),
            "{what}: {:?}",
            out.err().map(|e| error_message(&e))
        );
        assert_eq!(
            auth_refusals(&cp),
            1,
            "{what}: the first attempt is refused"
        );
        assert_eq!(admitted_requests(&cp), 1, "{what}: the retry gets in");
        client.list_pipelines().send().await.unwrap();
        assert_eq!(auth_refusals(&cp), 1, "{what}: the learned skew is reused");
        assert_eq!(admitted_requests(&cp), 2, "{what}");
    }
}

// ----- SigV4 by hand -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_signed_request_is_accepted() {
    // Proves the raw requests below are signed the way the fake verifies, so the refusals below
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

#[test]
fn raw_requests_sign_exactly_the_headers_they_send_at_the_chosen_time() {
    let at = UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("host", "127.0.0.1:4566"),
        ("x-amz-target", "CodePipeline_20150709.ListPipelines"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let added: HashMap<String, String> = sigv4_headers(KEY1, at, &headers, b"{}")
        .into_iter()
        .collect();
    assert_eq!(added.len(), 2, "{added:?}");
    assert_eq!(added["x-amz-date"], "20150830T123600Z");
    assert_eq!(amz_date(at), "20150830T123600Z");
    let authorization = &added["authorization"];
    assert!(
        authorization.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential={}/20150830/us-east-1/codepipeline/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=",
            KEY1.0
        )),
        "{authorization}"
    );
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
        Some(format!("{TARGET}ListWebhooks")), // in the model, not in the fake
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
    register_custom(&cp);
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
    register_custom(&cp);
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
    register_custom(&cp);
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
    register_custom(&cp);
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
    register_custom(&cp);
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

/// An unknown access key or a malformed Authorization header is refused from the request head: the server
/// does not wait for (or hold) a body it would refuse anyway. The body here is announced and never sent.
#[tokio::test]
async fn an_unknown_key_is_refused_before_the_body_is_read() {
    let cp = TestCp::start().await;
    for (case, authorization, expected) in [
        (
            "unknown key",
            "AWS4-HMAC-SHA256 Credential=AKIDNOBODY/20260101/us-east-1/codepipeline/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            "UnrecognizedClientException",
        ),
        (
            "malformed",
            "Basic dXNlcjpwYXNz",
            "IncompleteSignatureException",
        ),
    ] {
        let stream = tokio::net::TcpStream::connect(cp.addr)
            .await
            .expect("connect");
        let (mut rd, mut wr) = stream.into_split();
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: {TARGET}ListPipelines\r\nx-amz-date: {}\r\nauthorization: {authorization}\r\ncontent-length: {}\r\n\r\n",
            cp.addr,
            amz_date(SystemTime::now()),
            MIB
        );
        wr.write_all(head.as_bytes()).await.expect("write the head");
        let mut raw = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut raw))
            .await
            .unwrap_or_else(|_| panic!("{case}: no answer while the body is outstanding"))
            .expect("read");
        let text = String::from_utf8_lossy(&raw[..n]);
        assert!(
            text.starts_with("HTTP/1.1 4") && text.contains(expected),
            "{case}: {text}"
        );
        drop(wr);
    }
}
