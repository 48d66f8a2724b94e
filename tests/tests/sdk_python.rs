//! Wire compatibility through boto3: the job-worker flows, error codes (boto3 reads only the body's
//! `__type`), SigV4 as botocore signs it, and GetPipelineState's Details link, driven by
//! `tests/sdk/boto3_smoke.py` against an in-process fake (scenario and expectations:
//! `tests/src/smoke.rs`).
//!
//! The test installs the boto3 pinned in `tests/sdk/requirements.txt` into `<target>/sdk-py/` itself (once;
//! later runs reuse it). It needs `python3` (>= 3.9) with pip and access to PyPI, and fails, never skips,
//! without them.

use tests::sdk::{install_pip, sdk_dir};
use tests::smoke::{Script, smoke};

const MISSING: &str = "the boto3 wire test needs Python 3 (>= 3.9) with pip: install them (Debian/Ubuntu: apt-get install python3 python3-pip)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_runs_both_job_flows_and_parses_every_error_code() {
    let python = "python3";
    let site = install_pip(python, "requirements.txt", "sdk-py", "boto3", MISSING).await;
    let script = sdk_dir().join("boto3_smoke.py");
    smoke(Script {
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
