//! The artifact store on the wire: S3's REST API (path-style) on the fake's own address, told apart from
//! the CodePipeline API by its signature. A request whose SigV4 credential scope (the `Authorization`
//! header's, or a presigned URL's `X-Amz-Credential`) names the service `s3` goes to the store; everything
//! else stays where it was (the console at `/`, `/_sim/`, CodePipeline by `X-Amz-Target`).
//!
//! `s3s` parses and verifies SigV4 (header, presigned and chunked forms) and speaks S3's XML; this module
//! says who may do what: the worker's long-term keys may do anything; a job's temporary artifact
//! credentials (`artifactCredentials` in the job) only with their session token, only on the job's
//! pipeline's artifact bucket, and only while the job can still be answered (simulated clock).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

use crate::engine::Core;
use crate::store::StoreS3;

struct Auth {
    core: Arc<Core>,
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some(secret) = self.core.settings.access_keys.get(access_key) {
            return Ok(SecretKey::from(secret.as_str()));
        }
        match self.core.artifact_secret(access_key) {
            Some(secret) => Ok(SecretKey::from(secret)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records: {access_key}"
            )),
        }
    }
}

struct Access {
    core: Arc<Core>,
}

/// The session token of a request: the `x-amz-security-token` header, or a presigned URL's
/// `X-Amz-Security-Token`.
fn session_token(cx: &S3AccessContext<'_>) -> Option<String> {
    if let Some(v) = cx.headers().get("x-amz-security-token") {
        return v.to_str().ok().map(str::to_string);
    }
    form_urlencoded::parse(cx.uri().query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "X-Amz-Security-Token")
        .map(|(_, v)| v.into_owned())
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(
                AccessDenied,
                "Access Denied: anonymous requests are refused; sign the request with SigV4"
            ));
        };
        // AG-ARTIFACT-KMS: the headers of an upload, before its body is read.
        let op = cx.s3_op().name();
        if let (
            "PutObject" | "CreateMultipartUpload" | "CopyObject",
            S3Path::Object { bucket, key },
        ) = (op, cx.s3_path())
        {
            let header = |n: &str| cx.headers().get(n).and_then(|v| v.to_str().ok());
            self.core
                .check_upload_encryption(
                    &credentials.access_key,
                    bucket,
                    key,
                    op,
                    header("x-amz-server-side-encryption"),
                    header("x-amz-server-side-encryption-aws-kms-key-id"),
                )
                .map_err(|r| S3Error::with_message(S3ErrorCode::AccessDenied, r.message))?;
        }
        if self
            .core
            .settings
            .access_keys
            .contains_key(&credentials.access_key)
        {
            return Ok(());
        }
        let access_key = credentials.access_key.clone();
        let token = session_token(cx);
        let bucket = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.to_string()),
        };
        let op = cx.s3_op().name().to_string();
        self.core
            .check_artifact_access(&access_key, token.as_deref(), bucket.as_deref(), &op)
            .map_err(|r| {
                S3Error::with_message(
                    S3ErrorCode::from_bytes(r.code.as_bytes()).unwrap_or(S3ErrorCode::AccessDenied),
                    r.message,
                )
            })
    }
}

/// The S3 service over `core`'s store.
pub fn service(core: Arc<Core>) -> S3Service {
    let mut b = S3ServiceBuilder::new(StoreS3::new(core.store.clone()));
    b.set_auth(Auth { core: core.clone() });
    b.set_access(Access { core });
    b.build()
}

/// Whether the `Authorization` header signs for the service `s3`.
pub fn is_s3_signed(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("/s3/aws4_request"))
}

/// Whether a request is signed for the service `s3` (header or presigned form).
pub fn is_s3_request(req: &Request) -> bool {
    is_s3_signed(req.headers())
        || req.uri().query().is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes())
                .any(|(k, v)| k == "X-Amz-Credential" && v.ends_with("/s3/aws4_request"))
        })
}

/// The routing middleware: S3-signed requests go to the store (counted in flight for the clock-stepping
/// rule until their response body has been sent), the rest to the CodePipeline router.
pub async fn route(
    State((core, s3)): State<(Arc<Core>, S3Service)>,
    req: Request,
    next: Next,
) -> Response {
    if !is_s3_request(&req) {
        return next.run(req).await;
    }
    let guard = core
        .sim
        .activity
        .begin(None, &format!("S3 {} {}", req.method(), req.uri().path()));
    match s3.call(req.map(s3s::Body::http_body_unsync)).await {
        Ok(resp) => resp
            .map(move |body| {
                axum::body::Body::new(body.map_frame(move |f| {
                    let _in_flight = &guard;
                    f
                }))
            })
            .into_response(),
        Err(e) => {
            tracing::warn!(error = ?e, "the S3 service failed a request");
            (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("the artifact store failed: {e:?}"),
            )
                .into_response()
        }
    }
}
