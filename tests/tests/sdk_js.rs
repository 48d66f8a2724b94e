//! Wire compatibility through the AWS SDK for JavaScript v3 (`@aws-sdk/client-codepipeline`): the
//! job-worker flows, error codes (`err.name`), SigV4 as the JS signer signs it, and GetPipelineState's
//! Details link, driven by `tests/sdk/js_smoke.mjs` against an in-process fake (scenario and expectations:
//! `tests/src/smoke.rs`).
//!
//! The test installs the SDK pinned in `tests/sdk/package.json` + `package-lock.json` into
//! `<target>/sdk-js/` itself with `npm ci` (once; later runs reuse it). It needs Node.js (>= 20) with npm and
//! access to the npm registry, and fails, never skips, without them.

use tests::sdk::{
    INSTALL_TIMEOUT, fingerprint, install_once, require_tool, run_checked, sdk_dir, target_dir,
};
use tests::smoke::{Script, smoke};

const MISSING: &str = "the JavaScript SDK wire test needs Node.js >= 20 with npm: install them (Debian/Ubuntu: apt-get install nodejs npm, or the NodeSource packages for Node 20+)";

/// Installs the pinned SDK (if not yet there) and returns the folder holding its `node_modules`.
async fn install_js_sdk(node: &str) -> String {
    let version = require_tool(node, &["--version"], MISSING).await;
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 20, "{node} is {version}: {MISSING}");
    require_tool("npm", &["--version"], MISSING).await;

    let manifest = std::fs::read(sdk_dir().join("package.json")).expect("tests/sdk/package.json");
    let lock =
        std::fs::read(sdk_dir().join("package-lock.json")).expect("tests/sdk/package-lock.json");
    let key = format!(
        "node{major}-{}",
        fingerprint(&[&manifest, &lock, &major.to_le_bytes()])
    );
    let dir = install_once(
        &target_dir().join("sdk-js"),
        &key,
        "@aws-sdk/client-codepipeline",
        |staging| async move {
            std::fs::write(staging.join("package.json"), &manifest).expect("copy package.json");
            std::fs::write(staging.join("package-lock.json"), &lock)
                .expect("copy package-lock.json");
            let mut npm = tokio::process::Command::new("npm");
            npm.args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(&staging);
            run_checked(
                &mut npm,
                "npm ci (the npm registry must be reachable)",
                INSTALL_TIMEOUT,
            )
            .await;
        },
    )
    .await;
    dir.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_v3_runs_both_job_flows_and_parses_every_error_code() {
    let node = "node";
    let modules = install_js_sdk(node).await;
    let script = sdk_dir().join("js_smoke.mjs");
    smoke(Script {
        program: node.to_string(),
        args: vec![script.to_string_lossy().into_owned()],
        env: vec![("SDK_JS_NODE_MODULES".to_string(), modules)],
        sdk: "JS SDK v3".to_string(),
    })
    .await;
}
