//! The job-worker runtime: poll, acknowledge, dispatch on the continuation token, answer; bounded
//! concurrency; graceful shutdown.

pub mod api;
pub mod client_tokens;
pub(crate) mod job;
mod poll;

use std::sync::Arc;

use tokio::sync::watch;

use crate::action::Action;
use crate::config::RuntimeConfig;
use crate::metrics::Metrics;
use crate::signing::TokenSealer;
pub use api::{Ack, Answer, ApiError, JobApi, JobDetails, PolledJob};
pub use client_tokens::ClientTokens;

/// Tells a running runtime to drain and stop. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle not yet triggered.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Starts the drain: no new job is acknowledged, the held ones are answered.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the drain has started.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Jobs still unanswered when the drain deadline passed (0 after a clean drain).
    pub unanswered: usize,
}

/// The runtime: one action type, one action.
pub struct Runtime {
    config: RuntimeConfig,
    api: JobApi,
    action: Arc<dyn Action>,
    metrics: Arc<Metrics>,
}

impl Runtime {
    /// A runtime; `config` is validated here.
    pub fn new(
        config: RuntimeConfig,
        api: JobApi,
        action: Arc<dyn Action>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, crate::config::ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            api,
            action,
            metrics,
        })
    }

    /// Runs until `shutdown` is triggered, then drains within the drain deadline.
    pub async fn run(self, shutdown: Shutdown) -> RunReport {
        let Runtime {
            config,
            api,
            action,
            metrics,
        } = self;
        tracing::info!(
            action_type = %config.action_type,
            action = action.name(),
            poll_interval_ms = config.poll_interval.as_millis() as u64,
            batch_size = config.batch_size,
            max_in_flight = config.max_in_flight,
            "agent started"
        );
        match config.token_keys.current() {
            Some(key) => tracing::info!(
                key_id = key.id(),
                previous_keys = config.token_keys.previous().len(),
                "continuation tokens are signed for their action execution"
            ),
            None => tracing::warn!(
                "AGENT_TOKEN_KEY is not set: continuation tokens are bound to their action execution but not signed \
                 with a secret, so anyone who can answer a job can forge one; set AGENT_TOKEN_KEY (openssl rand -hex 32)"
            ),
        }
        let shared = Arc::new(job::Shared {
            api,
            action,
            metrics: metrics.clone(),
            max_failed_rounds: config.max_failed_rounds,
            sealer: TokenSealer::new(config.token_keys.clone(), config.unsigned_token_grace),
            draining: shutdown.subscribe(),
            foreign_jobs: Default::default(),
        });
        let mut tasks = poll::poll_until_shutdown(&config, shared, shutdown.subscribe()).await;
        metrics.set_draining();
        let held = tasks.len();
        tracing::info!(jobs = held, deadline = ?config.drain_deadline, "draining: answering the jobs already held");
        let drained = tokio::time::timeout(config.drain_deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        let unanswered = match drained {
            Ok(()) => 0,
            Err(_) => {
                let left = tasks.len();
                tracing::error!(
                    jobs = left,
                    "drain deadline passed with jobs still being handled"
                );
                tasks.abort_all();
                left
            }
        };
        tracing::info!(unanswered, "agent stopped");
        RunReport { unanswered }
    }
}
