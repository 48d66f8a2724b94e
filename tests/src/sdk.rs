//! Installing and running the pinned SDKs and tools the wire tests drive (`tests/tests/sdk_python.rs`,
//! `tests/tests/sdk_js.rs`, `tests/tests/awscli_readme.rs`): where things are (the workspace, `tests/sdk/`,
//! the cargo target dir), running a tool and failing the test with its output, and installing a pinned
//! package set once into the target dir, safely against concurrent test processes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::process::Command;

/// Real time an install (pip / npm) may take before the test gives up.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Written into an install folder once it is complete (before it is renamed into place).
const MARKER: &str = ".installed";

/// The workspace root (`tests/` is one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `tests/sdk/`: the scripts and the pinned dependency lists.
pub fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk")
}

/// The cargo target dir: `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// FNV-1a over `parts`: a stable cache key for an install (changes when a pin changes).
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Runs `program args` to check a tool is there and returns its trimmed stdout; fails the test with
/// `missing` (what to install) if it cannot be started or fails.
pub async fn require_tool(program: &str, args: &[&str], missing: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => panic!(
            "`{program} {}` failed ({}): {missing}\nstderr: {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run `{program}` ({e}): {missing}"),
    }
}

/// Runs `cmd` to completion within `timeout`; fails the test (with its output) if it fails.
pub async fn run_checked(cmd: &mut Command, what: &str, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("{what}: cannot start {cmd:?}: {e}"),
        Err(_) => panic!("{what}: {cmd:?} did not finish within {timeout:?}"),
    };
    if !out.status.success() {
        panic!(
            "{what}: {cmd:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Removes a staging folder if an install panics half-way.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `base/key`, installed by `install` (given an empty staging folder) unless a complete install is already
/// there. The install happens in a private staging folder that is renamed into place only when complete, so
/// concurrent test processes never see (or corrupt) a half-made one; a process that loses the race drops its
/// own copy and uses the winner's.
pub async fn install_once<F, Fut>(base: &Path, key: &str, what: &str, install: F) -> PathBuf
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    let final_dir = base.join(key);
    let marker = final_dir.join(MARKER);
    if marker.exists() {
        eprintln!("{what}: already installed in {}", final_dir.display());
        return final_dir;
    }
    std::fs::create_dir_all(base).unwrap_or_else(|e| panic!("create {}: {e}", base.display()));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let staging = base.join(format!(".staging-{key}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&staging)
        .unwrap_or_else(|e| panic!("create {}: {e}", staging.display()));
    let guard = RemoveOnDrop(staging.clone());
    let started = Instant::now();
    install(staging.clone()).await;
    std::fs::write(staging.join(MARKER), format!("{key}\n")).expect("write install marker");
    match std::fs::rename(&staging, &final_dir) {
        Ok(()) => {}
        Err(_) if marker.exists() => {
            eprintln!(
                "{what}: another test process installed it first; using {}",
                final_dir.display()
            );
            return final_dir; // `guard` removes our copy.
        }
        Err(e) => panic!(
            "{what}: cannot move {} to {}: {e} (remove {} and retry)",
            staging.display(),
            final_dir.display(),
            final_dir.display()
        ),
    }
    drop(guard);
    eprintln!(
        "{what}: installed in {} in {:.1?}",
        final_dir.display(),
        started.elapsed()
    );
    final_dir
}

/// Installs the Python packages pinned in `tests/sdk/<requirements>` (if not yet there) into
/// `<target>/<subdir>/` with `python -m pip install --target`, and returns the folder to put on
/// `PYTHONPATH` (its `bin/` holds the packages' scripts). Needs Python >= 3.9 with pip, else fails with
/// `missing`.
pub async fn install_pip(
    python: &str,
    requirements: &str,
    subdir: &str,
    what: &str,
    missing: &str,
) -> String {
    let version = require_tool(
        python,
        &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        missing,
    )
    .await;
    let (major, minor) = version.split_once('.').expect("python version");
    let (major, minor): (u32, u32) = (major.parse().expect("major"), minor.parse().expect("minor"));
    assert!(
        (major, minor) >= (3, 9),
        "{python} is Python {version}: {missing}"
    );
    require_tool(python, &["-m", "pip", "--version"], missing).await;

    let requirements = sdk_dir().join(requirements);
    let pins =
        std::fs::read(&requirements).unwrap_or_else(|e| panic!("{}: {e}", requirements.display()));
    let key = format!("py{version}-{}", fingerprint(&[&pins, version.as_bytes()]));
    let dir = install_once(
        &target_dir().join(subdir),
        &key,
        what,
        |staging| async move {
            let mut pip = Command::new(python);
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
                &format!("pip install {what} (PyPI must be reachable)"),
                INSTALL_TIMEOUT,
            )
            .await;
        },
    )
    .await;
    dir.to_string_lossy().into_owned()
}

/// What the boto3 tests say when Python is missing.
pub const PYTHON_MISSING: &str = "the boto3 tests need Python 3 (>= 3.9) with pip: install them (Debian/Ubuntu: apt-get install python3 python3-pip)";

/// Runs `tests/sdk/<script>` with the pinned boto3 (installed once into the target dir) and a clean
/// environment: no AWS config files, no instance metadata, `CP_ENDPOINT` = `endpoint`, plus `env`. The
/// script prints one JSON object as its last line; that object is returned. A non-zero exit, a timeout or
/// another last line fails the test with the script's output.
pub async fn run_boto3_script(
    script: &str,
    endpoint: &str,
    env: &[(&str, &str)],
    timeout: Duration,
) -> serde_json::Value {
    let python = "python3";
    let site = install_pip(
        python,
        "requirements.txt",
        "sdk-py",
        "boto3",
        PYTHON_MISSING,
    )
    .await;
    let mut cmd = Command::new(python);
    cmd.arg("-s")
        .arg(sdk_dir().join(script))
        .env_clear()
        .current_dir(sdk_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in ["PATH", "HOME", "TMPDIR"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.env("PYTHONPATH", site)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CP_ENDPOINT", endpoint)
        .envs(env.iter().copied());
    let out = run_checked(&mut cmd, script, timeout).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "{script}: the last line of stdout is not one JSON object:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}
