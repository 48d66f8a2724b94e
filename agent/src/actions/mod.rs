//! The actions that come with the agent.

pub mod apica;
pub mod apica_client;
pub mod bundle;
pub mod timed_wait;

pub use apica::ApicaAction;
pub use apica_client::{ApicaClient, ApicaClientConfig, ApicaError};
pub use bundle::{BundleAction, BundleLimits};
pub use timed_wait::TimedWaitAction;
