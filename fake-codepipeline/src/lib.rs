//! A fake AWS CodePipeline for job workers: the job-worker API over awsJson1.1, wire-compatible with
//! the real SDKs, verifying SigV4 and enforcing the protocol of `docs/protocol.md` on a simulated clock.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use fake_codepipeline::{FakeCodePipeline, Settings};
//! let sim = sim_core::Sim::manual();
//! let fake = FakeCodePipeline::new(sim, Settings::default().with_key("AKIDEXAMPLE", "secret"));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! fake.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod artifacts;
pub mod cli;
pub mod console;
pub mod engine;
pub mod error;
pub mod lifecycle;
pub mod model;
pub mod ops;
pub mod pipelines;
pub mod s3;
pub mod settings;
pub mod sigv4;
pub mod stages;
pub mod state;
pub mod store;
pub mod types;
pub mod validate;
pub mod view;
pub mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use sim_core::Sim;

pub use engine::{Core, Injected};
pub use error::ApiError;
pub use pipelines::{ActionTypeSpec, ExecutionSpec};
pub use settings::{Settings, Timing, TimingOverrides};
pub use state::{FaultKind, FaultRule};
pub use types::{
    AbandonedResults, ActionTimeoutPer, ActionTypeId, ExecutionMode, ExecutionStatus, FinalOn,
    JobStatus, JobTimeoutFrom, Owner, PipelineType, RepeatedResults, RetryMode,
};
pub use view::WorldView;

/// One fake CodePipeline: cheap to clone, all clones share state.
#[derive(Clone)]
pub struct FakeCodePipeline {
    core: Arc<Core>,
}

impl FakeCodePipeline {
    /// A fake on the shared world `sim` with `settings`.
    pub fn new(sim: Sim, settings: Settings) -> Self {
        FakeCodePipeline {
            core: Core::new(sim, settings),
        }
    }

    /// The engine, for in-process callers (the scenario runner, tests).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The simulated world it runs on.
    pub fn sim(&self) -> &Sim {
        &self.core.sim
    }

    /// The HTTP service: `POST /` (the API), `/_sim/*` (admin, clock, events), and the artifact store
    /// (S3's REST API, for any request signed for `s3`; see [`s3`]). The admin API and the console are
    /// behind the settings' [`sim_core::AdminGuard`].
    pub fn router(&self) -> Router {
        let wire = Arc::new(wire::Wire {
            core: self.core.clone(),
            verifier: sigv4::Verifier::new("codepipeline", self.core.settings.signature_skew),
        });
        let router = Router::new()
            .route(
                "/",
                get(console::page).post(wire::handle).fallback(wire::handle),
            )
            .with_state(wire)
            .merge(admin::routes(self.core.clone()))
            .merge(console::routes(self.core.clone()))
            .merge(sim_core::http::routes(self.core.sim.clone()));
        // The admin API, and the console page (a browser's GET /); the AWS API has SigV4.
        let router = self
            .core
            .settings
            .admin
            .clone()
            .layer(router, |method, path, _| {
                path.starts_with("/_sim/") || (path == "/" && method == axum::http::Method::GET)
            });
        // Outermost: a request signed for S3 is the artifact store's, whatever its path.
        router.layer(axum::middleware::from_fn_with_state(
            (self.core.clone(), s3::service(self.core.clone())),
            s3::route,
        ))
    }

    /// Serves on `listener` until `shutdown` resolves, then finishes the requests in flight; connections
    /// are bounded by [`sim_core::serve::ServeLimits::default`] (count, and time to send a request head).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        sim_core::serve::serve(listener, self.router(), Default::default(), shutdown).await
    }
}
