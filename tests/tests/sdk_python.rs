//! Wire compatibility through boto3: the job-worker flows, error codes (boto3 reads only the body's
//! `__type`), SigV4 as botocore signs it, and GetPipelineState's Details link, driven by
//! `tests/sdk/boto3_smoke.py` against an in-process fake (scenario and expectations: `tests/sdk/harness.rs`).
//!
//! The test installs the boto3 pinned in `tests/sdk/requirements.txt` into `<target>/sdk-py/` itself (once;
//! later runs reuse it). It needs `python3` (>= 3.9) with pip and access to PyPI, and fails, never skips,
//! without them.

#[path = "../sdk/harness.rs"]
mod harness;

use harness::{Script, fingerprint, install_once, require_tool, run_checked, sdk_dir, target_dir};

const MISSING: &str = "the boto3 wire test needs Python 3 (>= 3.9) with pip: install them (Debian/Ubuntu: apt-get install python3 python3-pip)";

/// Installs the pinned boto3 (if not yet there) and returns the folder to put on `PYTHONPATH`.
async fn install_boto3(python: &str) -> String {
    let version = require_tool(
        python,
        &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        MISSING,
    )
    .await;
    let (major, minor) = version.split_once('.').expect("python version");
    let (major, minor): (u32, u32) = (major.parse().expect("major"), minor.parse().expect("minor"));
    assert!(
        (major, minor) >= (3, 9),
        "{python} is Python {version}: {MISSING}"
    );
    require_tool(python, &["-m", "pip", "--version"], MISSING).await;

    let requirements = sdk_dir().join("requirements.txt");
    let pins = std::fs::read(&requirements).expect("tests/sdk/requirements.txt");
    let key = format!("py{version}-{}", fingerprint(&[&pins, version.as_bytes()]));
    let dir = install_once(
        &target_dir().join("sdk-py"),
        &key,
        "boto3",
        |staging| async move {
            let mut pip = tokio::process::Command::new(python);
            pip.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-input",
                "--disable-pip-version-check",
            ])
            .args([
                "--no-warn-conflicts",
                "--no-warn-script-location",
                "--target",
            ])
            .arg(&staging)
            .arg("-r")
            .arg(&requirements);
            run_checked(
                &mut pip,
                "pip install boto3 (PyPI must be reachable)",
                harness::INSTALL_TIMEOUT,
            )
            .await;
        },
    )
    .await;
    dir.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_runs_both_job_flows_and_parses_every_error_code() {
    let python = "python3";
    let site = install_boto3(python).await;
    let script = sdk_dir().join("boto3_smoke.py");
    harness::smoke(Script {
        program: python.to_string(),
        args: vec!["-s".to_string(), script.to_string_lossy().into_owned()],
        env: vec![
            ("PYTHONPATH".to_string(), site),
            ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
            ("PYTHONNOUSERSITE".to_string(), "1".to_string()),
        ],
        sdk: "boto3".to_string(),
    })
    .await;
}
