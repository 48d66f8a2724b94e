//! The reference CodePipeline job agent: a reusable job-worker runtime ([`runtime`]) that polls,
//! acknowledges, dispatches on the continuation token ([`token`]) and answers, with pluggable actions
//! ([`action::Action`]): the Apica Loadtest action, the timed wait and the bundle build ([`actions`]).
//!
//! Nothing here knows whether it talks to AWS or to the fakes: the CodePipeline client comes from
//! aws-config's standard chain ([`aws`]) and the backend from a URL.

pub mod action;
pub mod action_type;
pub mod actions;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod entry;
pub mod health;
pub mod metrics;
pub mod register;
pub mod runtime;
pub mod signing;
pub mod token;

pub use action::{
    Action, ActionError, ArtifactCredentials, FailureKind, JobArtifacts, JobContext, Step,
};
pub use action_type::{ActionTypeId, Owner};
pub use config::{ConfigError, RuntimeConfig};
pub use metrics::Metrics;
pub use runtime::{RunReport, Runtime, Shutdown};
pub use token::{ContinuationToken, Work, WorkRef};
