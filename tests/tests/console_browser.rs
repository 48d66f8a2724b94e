//! The console in a real browser: Debian's headless Chromium, driven over W3C WebDriver by Debian's
//! chromedriver (packages `chromium` and `chromium-driver`; nothing is downloaded). Both fakes run in this
//! process on one manual clock; a small agent in this test answers the jobs through the real SDK.
//!
//! It creates a pipeline (a source stage and the load test), opens the console, presses the pipeline's Run
//! button (StartPipelineExecution), waits for the Details link, clicks
//! "+10 m", sees the progress bar move, checks the layout (the timeline is not clipped in a scroll box, ids
//! and timestamps do not wrap), saves a screenshot (`target/tmp/console.png`;
//! `UPDATE_CONSOLE_SCREENSHOT=1` refreshes `docs/console.png`), reports the requests per second the page
//! made, runs the pipeline again and starts a bare execution (the newest run is listed first), and follows
//! the Details link to the backend's page (one progress bar). On a `scaled:60` clock it pauses, speeds up
//! and resumes, and the header says the speed the clock runs at now.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::Region;
use aws_sdk_codepipeline::types::ExecutionDetails;
use scenarios::Scenario;
use scenarios::world::{API_TOKEN, Overrides, World, replica_key};
use serde_json::{Value, json};
use tests::sdk_type;

/// How long any one condition in the browser may take to hold.
const WAIT: Duration = Duration::from_secs(30);
const CUSTOM: &str = "Test/Custom/ApicaLoadtest/1";

const SCENARIO: &str = r#"
name = "console-browser"
summary = "The console test's world: a Custom Apica action type and a 30-minute preset."
seed = 7

[action_type]
id = "Test/Custom/ApicaLoadtest/1"

[[backend.presets]]
name = "half-hour"
duration = "30m"
outcome = "passed"

# Scenario files must start an agent; World::start does not run steps: this test's own agent plays it.
[[steps]]
at = "0s"
do = "start-agent"
"#;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The first of `names` found on PATH (or as an absolute path).
fn find_program(names: &[&str]) -> Option<PathBuf> {
    for name in names {
        let p = Path::new(name);
        if p.is_absolute() && p.is_file() {
            return Some(p.to_path_buf());
        }
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let c = dir.join(name);
            if c.is_file() {
                return Some(c);
            }
        }
    }
    None
}

// ----- a minimal W3C WebDriver client -----

/// A chromedriver process (everything it starts is ended and reaped on drop) and one session.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    home: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The test process is a child subreaper (see `Browser::start`), so everything chromedriver started
        // is still below it, Chromium's helpers that left for a session of their own included: kill the
        // whole tree and reap it, so no process outlives the test and nothing is left to the machine's init.
        reap_descendants(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The processes below this one (children, their children, ...), read from /proc.
fn descendants() -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let ppid = tests::proc_stat(&entry.path())
                .and_then(|(_, fields)| fields.get(1).and_then(|p| p.parse().ok()));
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![std::process::id() as i32];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// Kills every descendant and reaps them until none is left or `limit` passes. Signals go through the
/// syscall, never the `kill` program: Debian's procps-ng 4.0.2 reads `kill -KILL -12345` as
/// kill(-1, SIGKILL) (the group's first digit taken for the target), which as root kills every process on
/// the machine; that is what ended a CI run here.
fn reap_descendants(limit: Duration) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let started = Instant::now();
    loop {
        let left = descendants();
        for pid in &left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Reap whatever has exited: adopted orphans are this process's children now.
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
        if left.is_empty() || started.elapsed() > limit {
            if !left.is_empty() {
                eprintln!("browser processes still alive after {limit:?}: {left:?}");
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Browser {
    async fn start(out: &Path) -> Browser {
        let chromium = find_program(&["chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("install chromium (apt-get install chromium)"));
        let chromedriver = find_program(&["chromedriver", "/usr/lib/chromium/chromedriver"])
            .unwrap_or_else(|| {
                panic!("install chromium-driver (apt-get install chromium chromium-driver)")
            });
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        // Orphans (Chromium's helpers whose parent died, its crash handler that starts a session of its
        // own) are adopted by this process instead of the machine's init, so `Drop` can end and reap them.
        nix::sys::prctl::set_child_subreaper(true).expect("become a child subreaper");
        // A fresh HOME with the profile in it, under target/, removed when the test ends.
        let home = out.join(format!("home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let profile = home.join("profile");
        std::fs::create_dir_all(&profile).expect("create the browser's HOME and profile");
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                out.join("chromedriver.log").display()
            ))
            // Chromium writes its caches and key stores under HOME: keep them in target/.
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            http,
            base,
            session: String::new(),
            driver,
            home: home.clone(),
        };
        let started = Instant::now();
        loop {
            let ready = browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!(
                    "chromedriver exited with {status} before it was ready; see {}",
                    out.join("chromedriver.log").display()
                );
            }
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not answer on {} within {WAIT:?}",
                browser.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1100",
                    // No extensions, no device discovery on the network, no
                    // keyring over D-Bus: the browser does only what the test asks of it.
                    "--disable-extensions", "--mute-audio",
                    "--disable-features=MediaRouter,DialMediaRouteProvider,Translate,OptimizationHints",
                    "--password-store=basic", "--no-default-browser-check",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let v = browser.call("POST", "/session", Some(caps)).await;
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_string();
        browser
    }

    /// One WebDriver command; returns its `value`, or the WebDriver error as `Err`.
    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let ok = resp.status().is_success();
        let v: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: not JSON: {e}"));
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if ok { Ok(value) } else { Err(value) }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {e}"))
    }

    async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    async fn exec(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Polls `script` until it returns something other than null/false, for at most [`WAIT`].
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        self.wait_for_within(WAIT, what, script).await
    }

    /// [`Browser::wait_for`] with its own bound.
    async fn wait_for_within(&self, limit: Duration, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.exec(script).await;
            if !(v.is_null() || v == Value::Bool(false)) {
                return v;
            }
            if started.elapsed() > limit {
                let page = self
                    .exec("return document.body ? document.body.innerText : ''")
                    .await;
                panic!(
                    "waited {limit:?} for {what}; the page says:\n{}",
                    page.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `css` names; the console swaps its DOM on each refresh, so a stale element
    /// is looked up again.
    async fn click(&self, css: &str) {
        for _ in 0..5 {
            let el = self
                .call(
                    "POST",
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            let id = el
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no element id in {el}"))
                .to_string();
            match self
                .try_call("POST", &format!("/element/{id}/click"), None)
                .await
            {
                Ok(_) => return,
                Err(e) if e["error"] == "stale element reference" => continue,
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
        panic!("{css} kept going stale: the page refreshed five times in a row");
    }

    async fn screenshot(&self) -> Vec<u8> {
        let v = self.call("GET", "/screenshot", None).await;
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot is base64 text"))
            .expect("the screenshot is valid base64")
    }

    async fn quit(&self) {
        let _ = self.try_call("DELETE", "", None).await;
    }
}

// ----- a small agent: the continuation-token protocol through the real SDK -----

/// Answers every job of the Custom Apica type: the first starts a backend test and answers at once with
/// its id as token and externalExecutionId; later ones report the test's progress, the last one 100.
async fn agent(cp_url: String, apica_url: String, key: (String, String)) {
    let conf = aws_sdk_codepipeline::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(cp_url)
        .credentials_provider(Credentials::new(key.0, key.1, None, None, "console-test"))
        .build();
    let cp = Client::from_conf(conf);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    loop {
        let polled = cp
            .poll_for_jobs()
            .action_type_id(sdk_type(CUSTOM))
            .max_batch_size(1)
            .send()
            .await
            .expect("PollForJobs");
        for job in polled.jobs() {
            let id = job.id().expect("job id").to_string();
            cp.acknowledge_job()
                .job_id(&id)
                .nonce(job.nonce().expect("nonce"))
                .send()
                .await
                .expect("AcknowledgeJob");
            let data = job.data().expect("job data");
            let token = data.continuation_token().map(str::to_string);
            let test_id = match token {
                Some(t) => t,
                None => {
                    let config = data
                        .action_configuration()
                        .and_then(|c| c.configuration())
                        .cloned()
                        .unwrap_or_default();
                    let created: Value = http
                        .post(format!("{apica_url}/v1/loadtests"))
                        .bearer_auth(API_TOKEN)
                        .json(&json!({
                            "preset": config.get("PresetName"),
                            "runnableFile": config.get("RunnableFile"),
                            "idempotencyKey": id,
                        }))
                        .send()
                        .await
                        .expect("create a load test")
                        .json()
                        .await
                        .expect("load test JSON");
                    created["jobId"].to_string()
                }
            };
            let test: Value = http
                .get(format!("{apica_url}/v1/loadtests/{test_id}"))
                .bearer_auth(API_TOKEN)
                .send()
                .await
                .expect("get the load test")
                .json()
                .await
                .expect("load test JSON");
            let pct = test["percentComplete"].as_i64().unwrap_or(0) as i32;
            let done = test["status"] == "passed";
            let details = ExecutionDetails::builder()
                .external_execution_id(&test_id)
                .summary(format!(
                    "load test {test_id}: {}",
                    test["status"].as_str().unwrap_or("?")
                ))
                .percent_complete(if done { 100 } else { pct.min(99) })
                .build();
            let mut put = cp
                .put_job_success_result()
                .job_id(&id)
                .execution_details(details);
            if !done {
                put = put.continuation_token(&test_id);
            }
            put.send().await.expect("PutJobSuccessResult");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_progress_and_the_details_link_live_in_a_real_browser() {
    let out = workspace_root().join("target").join("console-browser");
    std::fs::create_dir_all(&out).expect("create target/console-browser");
    let browser = Browser::start(&out).await;

    let scenario = Scenario::parse(SCENARIO, Path::new("console-browser.toml")).expect("scenario");
    let mut world = World::start(&scenario, scenario.seed, &Overrides::default())
        .await
        .expect("both fakes start");
    let agent = tokio::spawn(agent(
        world.cp_url.clone(),
        world.apica_url.clone(),
        replica_key(1, scenario.seed),
    ));

    // A pipeline with a source stage and the load test, as CreatePipeline makes it; the page runs it.
    world
        .cp
        .core()
        .create_pipeline(&json!({"pipeline": {
            "name": "console-demo",
            "roleArn": "arn:aws:iam::123456789012:role/console-test",
            "artifactStore": {"type": "S3", "location": "console-artifacts"},
            "stages": [
                {"name": "Source", "actions": [{
                    "name": "Source", "runOrder": 1,
                    "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                    "configuration": {"S3Bucket": "console-artifacts", "S3ObjectKey": "app.zip"},
                }]},
                {"name": "LoadTest", "actions": [{
                    "name": "ApicaLoadtest", "runOrder": 1,
                    "actionTypeId": {"category": "Test", "owner": "Custom", "provider": "ApicaLoadtest", "version": "1"},
                    "configuration": {"PresetName": "half-hour", "RunnableFile": "console.jmx"},
                }]},
            ],
        }}))
        .expect("create the pipeline");

    browser.goto(&format!("{}/", world.cp_url)).await;
    browser
        .wait_for(
            "the console's header and the pipeline's Run button",
            "return document.title.includes('console') && !!document.getElementById('advance-10m') \
             && !!document.querySelector('button[data-start=\"console-demo\"]')",
        )
        .await;

    // Run it from the page (StartPipelineExecution); the open page shows the run without a reload.
    browser.click("button[data-start=\"console-demo\"]").await;
    let label = browser
        .wait_for(
            "the run's load-test action",
            "const e = document.querySelector('section[data-pipeline=\"console-demo\"] progress[data-execution]'); \
             return e ? e.dataset.execution : null",
        )
        .await;
    let label = label.as_str().expect("execution label").to_string();
    let link = browser
        .wait_for(
            "the Details link of the run",
            &format!(
                "const a = document.querySelector('[data-execution=\"{label}\"] a.details'); return a ? a.href : null"
            ),
        )
        .await;
    let link = link.as_str().expect("href").to_string();
    assert!(
        link.starts_with(&world.apica_url) && link.contains("/jobs/"),
        "the Details link {link} should point at the backend {}",
        world.apica_url
    );
    let progress_script = format!(
        "const p = document.querySelector('progress[data-execution=\"{label}\"]'); return p ? p.value : null"
    );
    let before = browser.exec(&progress_script).await;
    assert_eq!(before, json!(0), "a new test is 0% complete");

    // Ten simulated minutes of a thirty-minute test: the next continuation job reports a third.
    browser.click("#advance-10m").await;
    let after = browser
        .wait_for(
            "the progress bar to move",
            &format!("const p = document.querySelector('progress[data-execution=\"{label}\"]'); return p && p.value > 0 ? p.value : null"),
        )
        .await;
    assert_eq!(after, json!(33), "10 of 30 minutes is 33%");
    browser
        .wait_for(
            "the clock to show +00:10:00",
            "return document.getElementById('clock-elapsed').textContent.startsWith('+00:10:00')",
        )
        .await;

    layout_checks(&browser).await;

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    // Saved under target/ on every run; `UPDATE_CONSOLE_SCREENSHOT=1` refreshes the README's copy in docs/.
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    std::fs::write(&shot, &png).expect("write the screenshot");
    if std::env::var_os("UPDATE_CONSOLE_SCREENSHOT").is_some() {
        std::fs::write(workspace_root().join("docs").join("console.png"), &png)
            .expect("write docs/console.png");
    }

    // What the page costs while open: every request it made, over its lifetime.
    let cost = browser
        .exec(
            "const r = performance.getEntriesByType('resource').filter(e => e.name.includes('/_sim/'));\
             return {requests: r.length, views: r.filter(e => e.name.includes('/_sim/console/view')).length, seconds: performance.now() / 1000}",
        )
        .await;
    let (requests, views, seconds) = (
        cost["requests"].as_f64().unwrap_or(0.0),
        cost["views"].as_f64().unwrap_or(0.0),
        cost["seconds"].as_f64().unwrap_or(0.0),
    );
    eprintln!(
        "console cost: {requests} requests ({views} view refreshes) in {seconds:.1} s open = {:.2} requests/s while busy",
        requests / seconds.max(0.001)
    );
    // One long poll at a time and at least 500 ms between refreshes: the page never hammers the fake,
    // however busy the world is (the first view request starts at once).
    assert!(
        views <= 1.0 + seconds * 2.0,
        "the console refreshed {views} times in {seconds:.1} s, more than once per 500 ms: {cost}"
    );

    newest_first(&browser, &world, &label).await;

    // Follow the Details link to the backend's page for the test.
    let external = link.rsplit('/').next().unwrap_or_default().to_string();
    browser
        .click(&format!("[data-execution=\"{label}\"] a.details"))
        .await;
    let text = browser
        .wait_for(
            "the backend's page for the test",
            "return location.href.includes('/jobs/') && document.body ? document.body.innerText : null",
        )
        .await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("Load test {external}")) && text.contains("half-hour"),
        "the backend's page should show test {external} of preset half-hour:\n{text}"
    );
    let bars = browser
        .exec("return document.querySelectorAll('progress, [role=progressbar], .bar').length")
        .await;
    assert_eq!(bars, json!(1), "the backend's page draws one progress bar");

    agent.abort();
    world.stop();

    scaled_clock_controls(&browser).await;
    browser.quit().await;
}

/// The timeline grows with the page instead of scrolling in a box, and no id, timestamp or token wraps
/// mid-value: each such cell is laid out on one line (a wide table scrolls sideways instead).
async fn layout_checks(browser: &Browser) {
    let clipped = browser
        .exec(
            "const t = document.querySelector('#timeline'); const rows = t.querySelectorAll('tr').length;\
             const boxes = [...t.querySelectorAll('*')].filter(e => e.scrollHeight > e.clientHeight + 1 \
               && ['auto', 'scroll', 'hidden'].includes(getComputedStyle(e).overflowY));\
             return {rows, clipped: boxes.map(e => e.tagName + '.' + e.className)}",
        )
        .await;
    assert!(
        clipped["rows"].as_u64().unwrap_or(0) > 10,
        "the timeline lists the events so far: {clipped}"
    );
    assert_eq!(
        clipped["clipped"],
        json!([]),
        "nothing in the timeline scrolls vertically"
    );
    let wrapped = browser
        .exec(
            "const cells = [...document.querySelectorAll('td.mono, td.rule, .jobs .nowrap')]\
               .filter(c => c.textContent.trim() !== '');\
             const lines = (c) => { const r = document.createRange(); r.selectNodeContents(c);\
               return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; };\
             return {cells: cells.length, wrapped: cells.filter(c => lines(c) > 1).map(c => c.textContent)}",
        )
        .await;
    assert!(
        wrapped["cells"].as_u64().unwrap_or(0) > 20,
        "ids and stamps to check: {wrapped}"
    );
    assert_eq!(
        wrapped["wrapped"],
        json!([]),
        "ids, timestamps and tokens are laid out on one line each"
    );
}

/// A second run of the pipeline is listed above the first; a bare execution started later still, in its
/// own (synthetic) pipeline, is listed above both.
async fn newest_first(browser: &Browser, world: &World, first_label: &str) {
    let runs = "return [...document.querySelectorAll('section[data-pipeline=\"console-demo\"] .pipeline-run')].map(r => r.dataset.run)";
    let first = browser.exec(runs).await;
    let first = first[0].as_str().expect("the first run's id").to_string();
    browser
        .click("section[data-pipeline=\"console-demo\"] button[data-start=\"console-demo\"]")
        .await;
    let order = browser
        .wait_for(
            "the second run of console-demo",
            &format!("const r = (function () {{ {runs} }})(); return r.length === 2 ? r : null"),
        )
        .await;
    assert_eq!(
        order[1].as_str(),
        Some(first.as_str()),
        "the newest run comes first: {order}"
    );
    world
        .cp
        .core()
        .start_execution(fake_codepipeline::ExecutionSpec {
            action_type: Some(CUSTOM.parse().expect("action type")),
            configuration: [
                ("PresetName".to_string(), "half-hour".to_string()),
                ("RunnableFile".to_string(), "bare.jmx".to_string()),
            ]
            .into(),
            client_id: None,
            label: Some("bare-1".into()),
            ..Default::default()
        })
        .expect("start a bare execution");
    let sections = browser
        .wait_for(
            "the bare execution's section",
            "const s = [...document.querySelectorAll('section.pipeline')].map(s => s.dataset.pipeline);\
             return s.length === 2 ? s : null",
        )
        .await;
    assert_ne!(
        sections[0].as_str(),
        Some("console-demo"),
        "the pipeline with the newest run comes first: {sections}"
    );
    assert!(
        browser
            .exec(&format!(
                "return !!document.querySelector('[data-execution=\"{first_label}\"] a.details')"
            ))
            .await
            == json!(true),
        "the first run is still shown"
    );
}

/// A fake on a `scaled:60` clock: the page pauses it, changes its speed and resumes it, and the clock the
/// fake runs on (not just the page) does what the buttons say.
async fn scaled_clock_controls(browser: &Browser) {
    use fake_codepipeline::{FakeCodePipeline, Settings};
    use sim_core::{ClockMode, Sim};

    let sim = Sim::new(ClockMode::Scaled(60.0));
    let _driver = sim.clock.spawn_driver();
    let fake = FakeCodePipeline::new(sim.clone(), Settings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let server = tokio::spawn(fake.serve(listener, std::future::pending()));

    browser.goto(&format!("{url}/")).await;
    browser
        .wait_for(
            "the pause button of a running clock",
            "return !!document.getElementById('clock-pause') && !document.getElementById('advance-10m')",
        )
        .await;
    // A pause, a new speed and a resume each show at once: the open long poll returns on the change,
    // not after its 5 s bound.
    let at_once = Duration::from_secs(4);
    browser.click("#clock-pause").await;
    browser
        .wait_for_within(
            at_once,
            "the page to show the clock paused",
            "return !!document.getElementById('clock-resume') && document.getElementById('console').dataset.paused === '1'",
        )
        .await;
    assert!(sim.clock.is_paused(), "the button paused the fake's clock");
    let stopped = sim.clock.now();
    assert_eq!(
        browser
            .exec("return document.getElementById('clock-speed').textContent")
            .await,
        json!("paused, at 60\u{d7}")
    );
    assert_eq!(
        sim.clock.now(),
        stopped,
        "no simulated time passes while paused"
    );

    // A new speed while paused is kept for the resume; at 3600x an hour passes in a real second.
    browser.click("#speed-3600").await;
    browser
        .wait_for_within(
            at_once,
            "3600x to be the current speed",
            "const b = document.getElementById('speed-3600'); return !!b && b.classList.contains('current')",
        )
        .await;
    assert_eq!(
        (sim.clock.speed(), sim.clock.is_paused()),
        (Some(3600.0), true)
    );
    assert_eq!(
        browser
            .exec("return document.getElementById('clock-mode').textContent")
            .await,
        json!("clock: scaled, paused (3,600\u{d7} when resumed)")
    );
    browser.click("#clock-resume").await;
    browser
        .wait_for(
            "the page's clock to tick past an hour at 3600x",
            "const r = document.getElementById('console'); const t = document.getElementById('clock-elapsed').textContent; \
             return r.dataset.speed === '3600' && r.dataset.paused === '0' && t >= '+01:00:00'",
        )
        .await;
    assert!(!sim.clock.is_paused());
    assert!(sim.clock.now() > stopped, "the resumed clock runs again");
    // The header says how the clock runs now, not the `scaled:60` it was started with.
    assert_eq!(
        browser
            .exec("return document.getElementById('clock-mode').textContent")
            .await,
        json!("clock: scaled, 3,600\u{d7} real time")
    );
    server.abort();
}
