//! Agent replicas: real child processes, each in its own process group, with the contract environment
//! of `docs/design.md` and its own access key.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// One running (or ended) agent process.
pub struct Replica {
    /// `replica-1`, `replica-2`, ... in start order.
    pub name: String,
    /// The access key it signs with (the fakes attribute requests by it).
    pub access_key: String,
    /// When it was started (real time).
    pub started: Instant,
    child: Child,
    pgid: Option<i32>,
    exited: Option<std::process::ExitStatus>,
}

/// Where the replicas' output goes: one file for the scenario, each line prefixed with the replica.
pub type AgentLog = Arc<Mutex<std::fs::File>>;

impl Replica {
    /// Starts `command` (a shell command line) with `env` on top of the parent's environment minus every
    /// `AWS_*` variable.
    pub fn spawn(
        name: &str,
        access_key: &str,
        command: &str,
        env: &[(String, String)],
        log: &AgentLog,
    ) -> std::io::Result<Self> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("exec {command}"));
        cmd.env_clear();
        cmd.envs(std::env::vars().filter(|(k, _)| !k.starts_with("AWS_")));
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.process_group(0);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let pgid = child.id().map(|p| p as i32);
        if let Some(out) = child.stdout.take() {
            pump(out, name.to_string(), log.clone());
        }
        if let Some(err) = child.stderr.take() {
            pump(err, name.to_string(), log.clone());
        }
        Ok(Replica {
            name: name.to_string(),
            access_key: access_key.to_string(),
            started: Instant::now(),
            child,
            pgid,
            exited: None,
        })
    }

    /// The process group id (the child's pid).
    pub fn pgid(&self) -> Option<i32> {
        self.pgid
    }

    /// Sends `signal` to the whole process group.
    pub fn signal(&self, signal: Signal) {
        if let Some(pg) = self.pgid
            && self.exited.is_none()
        {
            let _ = killpg(Pid::from_raw(pg), signal);
        }
    }

    /// Whether it has exited (reaps it if so).
    pub fn has_exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.exited.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = Some(status);
        }
        self.exited
    }

    /// Waits up to `limit` (real time) for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        if let Some(s) = self.exited {
            return Some(s);
        }
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.exited = Some(status);
                Some(status)
            }
            _ => None,
        }
    }

    /// SIGKILL to the group and reap.
    pub async fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.wait_exit(Duration::from_secs(5)).await;
        // Whatever the group left behind (a shell's children) goes with it.
        if let Some(pg) = self.pgid {
            let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
        }
    }
}

fn pump(stream: impl AsyncRead + Unpin + Send + 'static, name: String, log: AgentLog) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            use std::io::Write;
            let line = strip_ansi(&line);
            let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(f, "[{name}] {line}");
        }
    });
}

/// Opens (truncates) the agent log of a scenario.
pub fn open_log(path: &Path) -> std::io::Result<AgentLog> {
    Ok(Arc::new(Mutex::new(std::fs::File::create(path)?)))
}

/// Removes terminal colour codes (`ESC [ ... m`) so the log reads as plain text.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_codes_are_stripped() {
        assert_eq!(
            super::strip_ansi("\u{1b}[2mtime\u{1b}[0m INFO x"),
            "time INFO x"
        );
    }
}
