//! A fake Apica-style load-test backend whose tests run on `sim-core`'s simulated clock.
//!
//! A test of a six-hour preset ends when six simulated hours have passed: in a manual world only when
//! the clock is moved, never by real waiting. Scenarios script presets and faults (outages, error
//! rates, latency, rate limits, lost tests, slow starts) in process through [`FakeApica`] or over
//! HTTP through the admin API under `/_sim/`. See the crate's README for the HTTP API.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::time::Duration;
//! use fake_apica::{ApicaConfig, FakeApica, Preset};
//!
//! let sim = sim_core::Sim::manual();
//! let apica = FakeApica::new(sim.clone(), ApicaConfig::new("token-1", [Preset::passed("soak", Duration::from_secs(6 * 3600))]));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! apica.serve(listener, std::future::pending()).await
//! # }
//! ```

mod admin;
mod api;
mod auth;
mod backend;
mod body;
pub mod config;
mod details;
pub mod error;
pub mod fault;
mod injection;
pub mod loadtest;
pub mod preset;
pub mod request;
mod router;

pub use backend::{Created, FakeApica, KeyCount, SOURCE, TestCounts};
pub use config::{
    ApicaConfig, DEFAULT_FIRST_JOB_ID, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_TESTS_PER_TOKEN,
};
pub use details::escape;
pub use error::ApiError;
pub use fault::{Fault, FaultId, FaultKind, FaultSpec, FaultSpecError, LostTarget};
pub use loadtest::{TestStatus, TestView};
pub use preset::{Outcome, Preset, PresetError, PresetSpec, load_presets_file};
pub use request::CreateTest;
