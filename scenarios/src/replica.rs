//! Agent replicas: real child processes, each in its own process group, with the contract environment
//! of `docs/design.md` and its own access key. The command runs as written with `sh -c`, so `cd dir &&
//! ./agent`, `VAR=x ./agent` and `export ...; ./agent` work; the shell is then not the agent, so a replica
//! has exited only when its whole process group has.

use std::collections::HashMap;
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
    // Its last lines of output, and the tasks that copy its output to the log.
    tail: Tail,
    pumps: Vec<tokio::task::JoinHandle<()>>,
}

/// How many of a replica's last output lines are kept for messages.
pub const TAIL_LINES: usize = 8;

type Tail = Arc<Mutex<std::collections::VecDeque<String>>>;

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
        cmd.arg("-c").arg(command);
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
        let tail: Tail = Arc::default();
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(pump(out, name.to_string(), log.clone(), tail.clone()));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(pump(err, name.to_string(), log.clone(), tail.clone()));
        }
        Ok(Replica {
            name: name.to_string(),
            access_key: access_key.to_string(),
            started: Instant::now(),
            child,
            pgid,
            exited: None,
            tail,
            pumps,
        })
    }

    /// The process group id (the child's pid).
    pub fn pgid(&self) -> Option<i32> {
        self.pgid
    }

    /// Sends `signal` to the whole process group.
    pub fn signal(&self, signal: Signal) {
        // After the shell has gone, only while its group lives: the id may be reused once it is empty.
        if let Some(pg) = self.pgid
            && (self.exited.is_none() || self.group_alive())
        {
            let _ = killpg(Pid::from_raw(pg), signal);
        }
    }

    /// Whether it has exited, the shell and every process of its group (reaps the shell if so).
    pub fn has_exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.exited.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = Some(status);
        }
        self.exited.filter(|_| !self.group_alive())
    }

    /// Waits up to `limit` (real time) for the shell and every process of its group to exit; the shell's
    /// status.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        if self.exited.is_none() {
            match tokio::time::timeout_at(deadline, self.child.wait()).await {
                Ok(Ok(status)) => self.exited = Some(status),
                _ => return None,
            }
        }
        // A SIGTERM ends `sh` at once while the agent it started may still drain: wait for the group.
        while self.group_alive() {
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.exited
    }

    /// Whether a process of its group is still running (zombies, which have exited, do not count).
    pub fn group_alive(&self) -> bool {
        self.pgid.is_some_and(|g| live_processes_in_group(g) > 0)
    }

    #[cfg(test)]
    fn shells_and_sleep_running(&self) -> bool {
        self.pgid.is_some_and(|g| live_processes_in_group(g) >= 3)
    }

    /// Its last lines of output (at most [`TAIL_LINES`]), once its output has ended (or after 1 s, if a
    /// process it left behind keeps the pipe open).
    pub async fn last_lines(&mut self) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        for p in &mut self.pumps {
            let _ = tokio::time::timeout_at(deadline, p).await;
        }
        self.tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// SIGKILL to the group and reap.
    pub async fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.wait_exit(Duration::from_secs(5)).await;
        // Whatever the group left behind (a shell's children) goes with it.
        self.signal(Signal::SIGKILL);
    }
}

/// What `/proc/PID/stat` says of one process: its state, its process group, and the CPU time it and its
/// reaped children have used (utime + stime + cutime + cstime, in clock ticks; for the whole process,
/// every thread included).
struct ProcStat {
    state: char,
    pgrp: i32,
    cpu_ticks: u64,
}

/// Parses `/proc/PID/stat`. The command name is in parentheses and may itself hold spaces or
/// parentheses, so the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<ProcStat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt,
    // cmajflt, utime, stime, cutime, cstime.
    let fields: Vec<&str> = rest.split_whitespace().take(15).collect();
    if fields.len() < 15 {
        return None;
    }
    let cpu_ticks = fields[11..15]
        .iter()
        .map(|f| f.parse::<i64>().map(|v| v.max(0) as u64))
        .sum::<Result<u64, _>>()
        .ok()?;
    Some(ProcStat {
        state: fields[0].chars().next()?,
        pgrp: fields[2].parse().ok()?,
        cpu_ticks,
    })
}

/// Every process of the groups `pgids` that `/proc` lists (zombies included), as `(pid, stat)`, in one
/// pass over `/proc`; `None` without a readable `/proc`.
fn processes_in_groups(pgids: &[i32]) -> Option<Vec<(u32, ProcStat)>> {
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.filter_map(Result::ok)
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                Some((pid, parse_stat(&stat)?))
            })
            .filter(|(_, s)| pgids.contains(&s.pgrp))
            .collect(),
    )
}

/// The largest peak resident set (`VmHWM`, KiB) of any process of the groups `pgids`: the agent's peak
/// memory, whatever shell wraps it. `None` without a readable `/proc`.
pub fn peak_rss_kib(pgids: &[i32]) -> Option<u64> {
    processes_in_groups(pgids)?
        .into_iter()
        .filter_map(|(pid, _)| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .max()
}

/// How many processes of group `pgid` are running (zombies, which have exited, do not count).
fn live_processes_in_group(pgid: i32) -> usize {
    // No /proc: the shell's own exit is all that can be known.
    processes_in_groups(&[pgid]).map_or(0, |ps| {
        ps.iter()
            .filter(|(_, s)| !matches!(s.state, 'Z' | 'X'))
            .count()
    })
}

/// The CPU a process group has used so far, as the runner sees it in `/proc`. Two equal readings some
/// time apart mean that in between no process of the group started or ended and the group's CPU time did
/// not reach the next clock tick (`/proc` counts in ticks, 10 ms on Linux).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCpu {
    /// The group's processes, by pid.
    pids: Vec<u32>,
    /// utime + stime + cutime + cstime over them, in clock ticks.
    ticks: u64,
}

/// [`GroupCpu`] of each of the process groups `pgids` that has a process, from one pass over `/proc`;
/// empty without a readable `/proc`.
pub fn groups_cpu(pgids: &[i32]) -> HashMap<i32, GroupCpu> {
    let mut out: HashMap<i32, GroupCpu> = HashMap::new();
    let Some(mut ps) = processes_in_groups(pgids) else {
        return out;
    };
    ps.sort_by_key(|(pid, _)| *pid);
    for (pid, stat) in ps {
        let g = out.entry(stat.pgrp).or_insert(GroupCpu {
            pids: Vec::new(),
            ticks: 0,
        });
        g.pids.push(pid);
        g.ticks += stat.cpu_ticks;
    }
    out
}

fn pump(
    stream: impl AsyncRead + Unpin + Send + 'static,
    name: String,
    log: AgentLog,
    tail: Tail,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            use std::io::Write;
            let line = strip_ansi(&line);
            {
                let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(f, "[{name}] {line}");
            }
            let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    })
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
    use super::*;

    #[tokio::test]
    async fn a_replica_has_exited_only_when_its_whole_group_has() {
        let log = open_log(&std::env::temp_dir().join("replica-group-test.log")).unwrap();
        // The outer shell dies at SIGTERM at once; the agent it started ignores it and drains for 600 ms.
        let agent = "sh -c 'trap \"\" TERM; sleep 0.6'; :";
        let mut r = Replica::spawn("r", "K", agent, &[], &log).unwrap();
        // Until the inner shell has set its trap, a SIGTERM would end it too.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) && !r.shells_and_sleep_running() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        r.signal(Signal::SIGTERM);
        let status = r.wait_exit(Duration::from_secs(5)).await;
        assert!(status.is_some(), "it exits");
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "wait_exit returned after {:?}, with the agent still draining",
            t.elapsed()
        );
        assert!(!r.group_alive() && r.has_exited().is_some());
    }

    #[test]
    fn stat_lines_are_read_after_the_last_parenthesis() {
        let line = "4242 (a (weird) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.state, s.pgrp, s.cpu_ticks), ('S', 4240, 13));
        assert!(parse_stat("4242 (short) S 1 4240").is_none());
    }

    #[tokio::test]
    async fn a_sleeping_group_reads_the_same_cpu_twice_and_a_busy_one_does_not() {
        let log = open_log(&std::env::temp_dir().join("replica-cpu-test.log")).unwrap();
        let mut asleep = Replica::spawn("a", "K", "sleep 30", &[], &log).unwrap();
        // A shell that spins: it uses a core for as long as it runs.
        let mut busy = Replica::spawn("b", "K", "while :; do :; done", &[], &log).unwrap();
        let groups = [asleep.pgid().unwrap(), busy.pgid().unwrap()];
        tokio::time::sleep(Duration::from_millis(100)).await;
        let first = groups_cpu(&groups);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = groups_cpu(&groups);
        assert_eq!(first.get(&groups[0]), second.get(&groups[0]), "asleep");
        assert!(first.contains_key(&groups[1]));
        assert_ne!(first.get(&groups[1]), second.get(&groups[1]), "spinning");
        asleep.kill().await;
        busy.kill().await;
    }

    #[test]
    fn colour_codes_are_stripped() {
        assert_eq!(
            super::strip_ansi("\u{1b}[2mtime\u{1b}[0m INFO x"),
            "time INFO x"
        );
    }
}
