//! The poll loop: asks for as many jobs as there are free slots, spawns a task per job, pauses with
//! jitter when the queue is empty, and backs off after failed polls. One failing poll never stops it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::config::RuntimeConfig;
use crate::runtime::job::{self, Shared};

/// The longest pause after consecutive failed polls.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(20);

/// Polls until `shutdown` turns true; returns the job tasks still running.
pub(crate) async fn poll_until_shutdown(
    config: &RuntimeConfig,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinSet<()> {
    let slots = Arc::new(Semaphore::new(config.max_in_flight));
    let mut tasks = JoinSet::new();
    // Jobs this runtime is handling. A job that is not yet acknowledged may be offered to the next poll
    // again (CodePipeline re-offers it; with a short ack window at once), and the same runtime must not
    // handle it twice: both would acknowledge with the current nonce and both would answer.
    let in_hand: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut failed_polls: u32 = 0;
    loop {
        while tasks.try_join_next().is_some() {}
        if *shutdown.borrow() {
            break;
        }
        // Wait for one free slot, then take up to a batch of them.
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let mut permits = vec![first];
        while permits.len() < config.batch_size as usize {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let asked = permits.len();
        shared.metrics.poll();
        let polled = tokio::select! {
            polled = shared.api.poll(asked as u32) => polled,
            // A poll in flight is dropped: whatever it would return stays unacknowledged.
            _ = shutdown.changed() => break,
        };
        let pause = match polled {
            Ok(jobs) => {
                failed_polls = 0;
                let got = jobs.len();
                let polled_at = Instant::now();
                let (claims_tx, mut claims) = mpsc::channel(got.max(1));
                let mut spawned = 0;
                for (job, permit) in jobs.into_iter().zip(permits.drain(..)) {
                    let id = job.job_id.clone();
                    if !in_hand
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.clone())
                    {
                        tracing::debug!(job_id = %id, "offered again while in hand; handled once");
                        continue;
                    }
                    let (shared, in_hand) = (shared.clone(), in_hand.clone());
                    let claim = job::Claim::new(claims_tx.clone());
                    spawned += 1;
                    tasks.spawn(async move {
                        job::handle(shared, job, polled_at, claim).await;
                        in_hand
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id);
                        drop(permit);
                    });
                }
                drop(claims_tx);
                let paced = with_jitter(config.poll_interval, config.poll_jitter);
                if got < asked {
                    paced
                } else {
                    // A full batch means more may be waiting: poll again at once, unless none of the jobs
                    // became ours (lost to other replicas, another action type, already in hand). Polling
                    // at once then only meets the same jobs again: pace it like an empty poll.
                    let deadline = tokio::time::Instant::now() + paced;
                    let mut won = false;
                    let mut heard = 0;
                    while heard < spawned && !won {
                        tokio::select! {
                            claim = claims.recv() => match claim {
                                Some(claim) => { heard += 1; won = claim; }
                                None => break,
                            },
                            _ = tokio::time::sleep_until(deadline) => break,
                            _ = shutdown.changed() => break,
                        }
                    }
                    if won || *shutdown.borrow() {
                        Duration::ZERO
                    } else {
                        deadline.saturating_duration_since(tokio::time::Instant::now())
                    }
                }
            }
            Err(e) => {
                failed_polls = failed_polls.saturating_add(1);
                shared.metrics.poll_error();
                let pause = error_backoff(config.poll_interval, failed_polls);
                tracing::warn!(error = %e, failed_polls, pause_ms = pause.as_millis() as u64, "poll failed; polling again after a pause");
                with_jitter(pause, config.poll_jitter)
            }
        };
        drop(permits);
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
    tasks
}

fn with_jitter(pause: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return pause;
    }
    pause + jitter.mul_f64(rand::rng().random_range(0.0..1.0))
}

/// After `n` failed polls in a row: 250 ms doubling, at least the poll interval, at most 20 s.
fn error_backoff(interval: Duration, n: u32) -> Duration {
    let exp = Duration::from_millis(250).saturating_mul(1u32 << n.saturating_sub(1).min(10));
    exp.max(interval).min(MAX_ERROR_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_backoff_grows_and_caps() {
        let i = Duration::ZERO;
        assert_eq!(error_backoff(i, 1), Duration::from_millis(250));
        assert_eq!(error_backoff(i, 3), Duration::from_millis(1000));
        assert_eq!(error_backoff(i, 30), MAX_ERROR_BACKOFF);
        assert_eq!(
            error_backoff(Duration::from_secs(2), 1),
            Duration::from_secs(2)
        );
    }
}
