//! The whole HTTP surface in one router, and a helper that serves it until shutdown.

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::backend::FakeApica;
use crate::error::ApiError;
use crate::{admin, api, details};

impl FakeApica {
    /// Every route: the `/v1` API, the pages (`/`, `/jobs/{jobId}`), the admin API (`/_sim/presets`,
    /// `/_sim/faults`, `/_sim/tests`, `/_sim/tokens`) and sim-core's `/_sim/clock` and `/_sim/events`.
    /// Unknown paths and methods answer JSON errors; bodies over the limit answer 413. The admin API is
    /// behind the configured [`sim_core::AdminGuard`].
    pub fn router(&self) -> Router {
        let router = Router::new()
            .merge(api::routes(self.clone()))
            .merge(details::routes(self.clone()))
            .merge(admin::routes(self.clone()))
            .merge(sim_core::http::routes(self.sim().clone()))
            .fallback(no_route)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(self.shared.max_body_bytes));
        self.shared
            .admin
            .clone()
            .layer(router, |_, path, _| path.starts_with("/_sim/"))
    }

    /// Serves [`FakeApica::router`] on `listener` until `shutdown` resolves, then finishes the requests
    /// in flight and returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        sim_core::serve::serve(listener, self.router(), Default::default(), shutdown).await
    }
}

async fn no_route(method: Method, uri: Uri) -> Response {
    ApiError::NoRoute(format!("{method} {}", uri.path())).into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::MethodNotAllowed(format!("{method} (on {})", uri.path())).into_response()
}
