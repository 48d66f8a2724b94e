//! AWS Signature Version 4 verification for incoming awsJson requests.
//!
//! The fake does not canonicalise requests itself: it re-signs the request with the maintained
//! `aws-sigv4` crate (the signer the Rust SDK uses), over exactly the headers the request lists in
//! `SignedHeaders`, at the request's own `X-Amz-Date`, in the request's credential scope and with
//! its session token, and then compares the two signatures in constant time. SDKs sign different
//! header sets (boto3 `content-type;host;x-amz-date;x-amz-target`, aws-cli adds `user-agent`, the
//! Rust SDK adds `content-length` and `x-amz-user-agent`), so nothing about the set is assumed
//! beyond what SigV4 itself requires (`host` and `x-amz-date`).
//!
//! Failures map to the awsJson error shapes real AWS JSON services use, all HTTP 400
//! (see `docs/protocol.md`, section "Wire"): [`AuthError::error_type`] gives the `__type` and the
//! `Display` text is the `message`. Messages never contain the secret key or the expected
//! signature.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, Method, Uri};
use subtle::ConstantTimeEq;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name CodePipeline requests are signed for.
pub const SERVICE: &str = "codepipeline";
/// The clock-skew window AWS allows by default (of real time).
pub const DEFAULT_SKEW: Duration = Duration::from_secs(5 * 60);

const HOST: &str = "host";
const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
const SCOPE_TERMINATOR: &str = "aws4_request";
/// Longest excerpt of a client-supplied value quoted back in an error message.
const MAX_ECHO: usize = 128;

/// Keys the fake accepts: access key id -> secret access key.
pub trait KeyLookup {
    /// The secret access key for `access_key`, or `None` if the key is unknown.
    fn secret_for(&self, access_key: &str) -> Option<String>;
}

impl KeyLookup for HashMap<String, String> {
    fn secret_for(&self, access_key: &str) -> Option<String> {
        self.get(access_key).cloned()
    }
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The access key id from the credential scope.
    pub access_key: String,
    /// The region from the credential scope.
    pub region: String,
    /// The service from the credential scope (always the verifier's service).
    pub service: String,
    /// The `X-Amz-Security-Token` the request carried, if any.
    pub session_token: Option<String>,
}

/// Why a request failed SigV4 verification. `Display` is the client-facing `message`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// No (or an empty) `Authorization` header.
    #[error("Missing Authentication Token")]
    MissingAuthorization,
    /// The `Authorization` header is present but unusable as a whole (several of them, not
    /// visible ASCII, a parameter without `=`, a repeated parameter).
    #[error("Authorization header is malformed: {reason}")]
    MalformedAuthorization { reason: String },
    /// The `Authorization` header does not start with `AWS4-HMAC-SHA256`.
    #[error(
        "Unsupported Authorization algorithm '{algorithm}': only AWS4-HMAC-SHA256 is supported."
    )]
    UnsupportedAlgorithm { algorithm: String },
    /// `Credential`, `SignedHeaders` and/or `Signature` are missing or empty.
    #[error("{}", missing_parameters_message(.parameters))]
    MissingAuthorizationParameters { parameters: Vec<&'static str> },
    /// The credential is not `<key>/<yyyymmdd>/<region>/<service>/aws4_request`.
    #[error(
        "Credential '{credential}' is malformed: expected \
         '<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request'."
    )]
    MalformedCredential { credential: String },
    /// No `X-Amz-Date` header.
    #[error("Authorization header requires existence of a 'X-Amz-Date' header.")]
    MissingDate,
    /// `X-Amz-Date` is not `YYYYMMDD'T'HHMMSS'Z'` (or not a real time).
    #[error("X-Amz-Date '{value}' is not a valid timestamp of the form YYYYMMDD'T'HHMMSS'Z'.")]
    MalformedDate { value: String },
    /// The credential scope's date is not the date of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '{credential_date}' != '{request_date}', from '{request_date_time}'."
    )]
    CredentialDateMismatch {
        credential_date: String,
        request_date: String,
        request_date_time: String,
    },
    /// `SignedHeaders` is not a usable list (bad name, or `host` / `x-amz-date` not in it).
    #[error("SignedHeaders is malformed: {reason}")]
    MalformedSignedHeaders { reason: String },
    /// A header listed in `SignedHeaders` is not in the request.
    #[error("Header '{header}' is listed in SignedHeaders but is not present in the request.")]
    SignedHeaderMissing { header: String },
    /// A signed header's value is not visible ASCII, so it cannot be canonicalised.
    #[error(
        "Signed header '{header}' has a value that is not visible ASCII and cannot be \
         canonicalised."
    )]
    UnsupportedHeaderValue { header: String },
    /// The signer refused the request (e.g. an unusable URI); the request is malformed.
    #[error("The request cannot be canonicalised for signing: {reason}")]
    Unsignable { reason: String },
    /// The access key id is not one the fake was configured with.
    #[error(
        "The security token included in the request is invalid. (access key id '{access_key}')"
    )]
    UnknownAccessKey { access_key: String },
    /// The credential scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}'. (got '{actual}')")]
    WrongService { expected: String, actual: String },
    /// `X-Amz-Date` is more than the allowed skew before now.
    #[error("Signature expired: {request_time} is now earlier than {limit} ({now} - {skew}.)")]
    SignatureExpired {
        request_time: String,
        limit: String,
        now: String,
        skew: String,
    },
    /// `X-Amz-Date` is more than the allowed skew after now.
    #[error(
        "Signature not yet current: {request_time} is still later than {limit} ({now} + {skew}.)"
    )]
    SignatureNotYetCurrent {
        request_time: String,
        limit: String,
        now: String,
        skew: String,
    },
    /// The request's `SignedHeaders` is not the canonical (sorted, lower-case, unique) list of
    /// the headers it names, so no signer could have produced it.
    #[error(
        "The request signature we calculated does not match the signature you provided: \
         SignedHeaders '{provided}' is not in canonical form (expected '{canonical}')."
    )]
    SignedHeadersMismatch { provided: String, canonical: String },
    /// The signature does not match.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation \
         for details."
    )]
    SignatureMismatch,
}

fn missing_parameters_message(parameters: &[&'static str]) -> String {
    parameters
        .iter()
        .map(|p| format!("Authorization header requires '{p}' parameter."))
        .collect::<Vec<_>>()
        .join(" ")
}

impl AuthError {
    /// The awsJson error `__type`: MissingAuthenticationTokenException | IncompleteSignatureException |
    /// UnrecognizedClientException | InvalidSignatureException.
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthorization => "MissingAuthenticationTokenException",
            AuthError::MalformedAuthorization { .. }
            | AuthError::UnsupportedAlgorithm { .. }
            | AuthError::MissingAuthorizationParameters { .. }
            | AuthError::MalformedCredential { .. }
            | AuthError::MissingDate
            | AuthError::MalformedDate { .. }
            | AuthError::CredentialDateMismatch { .. }
            | AuthError::MalformedSignedHeaders { .. }
            | AuthError::SignedHeaderMissing { .. }
            | AuthError::UnsupportedHeaderValue { .. }
            | AuthError::Unsignable { .. } => "IncompleteSignatureException",
            AuthError::UnknownAccessKey { .. } => "UnrecognizedClientException",
            AuthError::WrongService { .. }
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::SignedHeadersMismatch { .. }
            | AuthError::SignatureMismatch => "InvalidSignatureException",
        }
    }
}

/// Verifies SigV4 `Authorization` headers for one service.
#[derive(Debug, Clone)]
pub struct Verifier {
    service: String,
    skew: Duration,
}

impl Default for Verifier {
    /// Service `codepipeline`, skew 5 minutes.
    fn default() -> Self {
        Self::new(SERVICE, DEFAULT_SKEW)
    }
}

impl Verifier {
    /// A verifier for requests signed for `service`, accepting an `X-Amz-Date` at most `skew`
    /// (whole seconds) away from real time.
    pub fn new(service: &str, skew: Duration) -> Self {
        Self {
            service: service.to_owned(),
            skew,
        }
    }

    /// The service the credential scope must name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The allowed clock skew.
    pub fn skew(&self) -> Duration {
        self.skew
    }

    /// What can be checked before the body is read: one well-formed `Authorization` header, a credential
    /// scope for this service, and an access key that exists. A request that fails here is refused without
    /// reading its body, so unauthenticated clients cannot make the server hold large bodies.
    pub fn precheck(&self, headers: &HeaderMap, keys: &dyn KeyLookup) -> Result<(), AuthError> {
        let (_, scope) = authorization_of(headers)?;
        if scope.service != self.service {
            return Err(AuthError::WrongService {
                expected: self.service.clone(),
                actual: excerpt(scope.service),
            });
        }
        keys.secret_for(scope.access_key)
            .ok_or_else(|| AuthError::UnknownAccessKey {
                access_key: excerpt(scope.access_key),
            })?;
        Ok(())
    }

    /// Verifies the request; `now` is REAL wall-clock time (never simulated time).
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        keys: &dyn KeyLookup,
        now: SystemTime,
    ) -> Result<Caller, AuthError> {
        // 1. The Authorization header and its three parameters.
        let (auth, scope) = authorization_of(headers)?;

        // 2. The signing time, and the scope's consistency with it and with this service.
        let date_value = headers
            .get(X_AMZ_DATE)
            .ok_or(AuthError::MissingDate)?
            .to_str()
            .map_err(|_| AuthError::MalformedDate {
                value: "<not visible ASCII>".into(),
            })?;
        let request_secs = parse_amz_date(date_value).ok_or_else(|| AuthError::MalformedDate {
            value: excerpt(date_value),
        })?;
        if scope.date != &date_value[..8] {
            return Err(AuthError::CredentialDateMismatch {
                credential_date: scope.date.to_owned(),
                request_date: date_value[..8].to_owned(),
                request_date_time: date_value.to_owned(),
            });
        }
        if scope.service != self.service {
            return Err(AuthError::WrongService {
                expected: self.service.clone(),
                actual: excerpt(scope.service),
            });
        }

        // 3. The SignedHeaders list.
        let signed_names = parse_signed_headers(auth.signed_headers)?;

        // 4. The key, then the clock.
        let secret =
            keys.secret_for(scope.access_key)
                .ok_or_else(|| AuthError::UnknownAccessKey {
                    access_key: excerpt(scope.access_key),
                })?;
        self.check_skew(request_secs, now)?;

        // 5. The values of exactly the signed headers (the signer adds x-amz-date and
        //    x-amz-security-token itself from the signing params).
        let mut signable_headers: Vec<(&str, &str)> = Vec::new();
        let mut token_signed = false;
        for name in &signed_names {
            match name.as_str() {
                X_AMZ_DATE => {}
                X_AMZ_SECURITY_TOKEN => {
                    token_signed = true;
                    if headers.get(X_AMZ_SECURITY_TOKEN).is_none() {
                        return Err(AuthError::SignedHeaderMissing {
                            header: X_AMZ_SECURITY_TOKEN.into(),
                        });
                    }
                }
                HOST if headers.get(HOST).is_none() => {
                    // HTTP/2 carries the host in `:authority`, which ends up in the URI.
                    let authority =
                        uri.authority()
                            .ok_or_else(|| AuthError::SignedHeaderMissing {
                                header: HOST.into(),
                            })?;
                    signable_headers.push((HOST, authority.as_str()));
                }
                other => {
                    let mut present = false;
                    for value in headers.get_all(name) {
                        present = true;
                        let value =
                            value
                                .to_str()
                                .map_err(|_| AuthError::UnsupportedHeaderValue {
                                    header: other.to_owned(),
                                })?;
                        signable_headers.push((name.as_str(), value));
                    }
                    if !present {
                        return Err(AuthError::SignedHeaderMissing {
                            header: other.to_owned(),
                        });
                    }
                }
            }
        }
        let session_token = match headers.get(X_AMZ_SECURITY_TOKEN).map(|v| v.to_str()) {
            None => None,
            Some(Ok(token)) => Some(token.to_owned()),
            Some(Err(_)) if token_signed => {
                return Err(AuthError::UnsupportedHeaderValue {
                    header: X_AMZ_SECURITY_TOKEN.into(),
                });
            }
            // An unsigned token we cannot even read is ignored, like any unsigned header.
            Some(Err(_)) => None,
        };

        // 6. Re-sign with aws-sigv4 and compare.
        let mut settings = SigningSettings::default();
        // Nothing the request signed may be dropped: the default excludes `user-agent`, which
        // aws-cli signs. Only signed headers are passed in, so nothing else needs excluding.
        settings.excluded_headers = None;
        settings.session_token_mode = if token_signed {
            SessionTokenMode::Include
        } else {
            SessionTokenMode::Exclude
        };
        // The other defaults (double URI encoding, path normalisation, no
        // x-amz-content-sha256 header) are what every AWS SDK uses for non-S3 services.
        let identity: Identity = Credentials::new(
            scope.access_key,
            secret,
            session_token.clone(),
            None,
            "fake-codepipeline",
        )
        .into();
        let signing_time = UNIX_EPOCH + Duration::from_secs(request_secs);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(scope.region)
            .name(scope.service)
            .time(signing_time)
            .settings(settings)
            .build()
            .map_err(|e| AuthError::Unsignable {
                reason: e.to_string(),
            })?
            .into();
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let signable = SignableRequest::new(
            method.as_str(),
            path_and_query,
            signable_headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| AuthError::Unsignable {
            reason: e.to_string(),
        })?;
        let (instructions, expected_signature) = sign(signable, &params)
            .map_err(|e| AuthError::Unsignable {
                reason: e.to_string(),
            })?
            .into_parts();
        let canonical_signed_headers = instructions
            .headers()
            .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, value)| signed_headers_of(value))
            .ok_or_else(|| AuthError::Unsignable {
                reason: "the signer produced no SignedHeaders".into(),
            })?;
        if canonical_signed_headers != auth.signed_headers {
            return Err(AuthError::SignedHeadersMismatch {
                provided: excerpt(auth.signed_headers),
                canonical: excerpt(canonical_signed_headers),
            });
        }
        if !constant_time_eq(auth.signature.as_bytes(), expected_signature.as_bytes()) {
            return Err(AuthError::SignatureMismatch);
        }

        Ok(Caller {
            access_key: scope.access_key.to_owned(),
            region: scope.region.to_owned(),
            service: scope.service.to_owned(),
            session_token,
        })
    }

    fn check_skew(&self, request_secs: u64, now: SystemTime) -> Result<(), AuthError> {
        let now_secs: i128 = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => i128::from(d.as_secs()),
            Err(e) => -i128::from(e.duration().as_secs()),
        };
        let skew_secs = i128::from(self.skew.as_secs());
        let request = i128::from(request_secs);
        let skew_label = if skew_secs % 60 == 0 {
            format!("{} min", skew_secs / 60)
        } else {
            format!("{skew_secs} sec")
        };
        if request < now_secs - skew_secs {
            return Err(AuthError::SignatureExpired {
                request_time: format_amz_date(request),
                limit: format_amz_date(now_secs - skew_secs),
                now: format_amz_date(now_secs),
                skew: skew_label,
            });
        }
        if request > now_secs + skew_secs {
            return Err(AuthError::SignatureNotYetCurrent {
                request_time: format_amz_date(request),
                limit: format_amz_date(now_secs + skew_secs),
                now: format_amz_date(now_secs),
                skew: skew_label,
            });
        }
        Ok(())
    }
}

/// The three parameters of an `AWS4-HMAC-SHA256` Authorization header.
#[derive(Debug)]
struct AuthorizationParams<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<AuthorizationParams<'_>, AuthError> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(AuthError::MissingAuthorization);
    }
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::UnsupportedAlgorithm {
            algorithm: excerpt(algorithm),
        });
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(AuthError::MalformedAuthorization {
                reason: format!("parameter '{}' has no '=' sign", excerpt(part)),
            });
        };
        let slot = match key.trim_matches([' ', '\t']) {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            // Unknown parameters are ignored, as AWS does.
            _ => continue,
        };
        if slot.is_some() {
            return Err(AuthError::MalformedAuthorization {
                reason: format!("parameter '{}' appears more than once", excerpt(key)),
            });
        }
        *slot = Some(val.trim_matches([' ', '\t']));
    }
    let (credential, signed_headers, signature) = (
        non_empty(credential),
        non_empty(signed_headers),
        non_empty(signature),
    );
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) => Ok(AuthorizationParams {
            credential,
            signed_headers,
            signature,
        }),
        _ => {
            let mut parameters = Vec::new();
            if credential.is_none() {
                parameters.push("Credential");
            }
            if signed_headers.is_none() {
                parameters.push("SignedHeaders");
            }
            if signature.is_none() {
                parameters.push("Signature");
            }
            Err(AuthError::MissingAuthorizationParameters { parameters })
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|s| !s.is_empty())
}

/// The credential scope `<access key>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug)]
struct Scope<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

/// The one `Authorization` header of a request, parsed: its parameters and credential scope.
fn authorization_of(
    headers: &HeaderMap,
) -> Result<(AuthorizationParams<'_>, Scope<'_>), AuthError> {
    let mut authorizations = headers.get_all(http::header::AUTHORIZATION).iter();
    let authorization = match (authorizations.next(), authorizations.next()) {
        (None, _) => return Err(AuthError::MissingAuthorization),
        (Some(_), Some(_)) => {
            return Err(AuthError::MalformedAuthorization {
                reason: "the request has more than one Authorization header".into(),
            });
        }
        (Some(value), None) => value,
    };
    let authorization = authorization
        .to_str()
        .map_err(|_| AuthError::MalformedAuthorization {
            reason: "the value is not visible ASCII".into(),
        })?;
    let auth = parse_authorization(authorization)?;
    let scope = parse_credential(auth.credential)?;
    Ok((auth, scope))
}

fn parse_credential(credential: &str) -> Result<Scope<'_>, AuthError> {
    let malformed = || AuthError::MalformedCredential {
        credential: excerpt(credential),
    };
    let mut parts = credential.split('/');
    let (Some(access_key), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(malformed());
    };
    if [access_key, region, service].iter().any(|s| s.is_empty())
        || terminator != SCOPE_TERMINATOR
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(malformed());
    }
    Ok(Scope {
        access_key,
        date,
        region,
        service,
    })
}

/// Lower-cased, validated names from `SignedHeaders`, without duplicates, in request order.
fn parse_signed_headers(list: &str) -> Result<Vec<HeaderName>, AuthError> {
    let mut names: Vec<HeaderName> = Vec::new();
    for raw in list.split(';') {
        let name = HeaderName::from_bytes(raw.as_bytes()).map_err(|_| {
            AuthError::MalformedSignedHeaders {
                reason: format!("'{}' is not a valid header name", excerpt(raw)),
            }
        })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if !names.iter().any(|n| n == HOST) {
        return Err(AuthError::MalformedSignedHeaders {
            reason: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                .into(),
        });
    }
    if !names.iter().any(|n| n == X_AMZ_DATE) {
        return Err(AuthError::MalformedSignedHeaders {
            reason: "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.".into(),
        });
    }
    Ok(names)
}

/// The `SignedHeaders=` value of an Authorization header the signer produced.
fn signed_headers_of(authorization: &str) -> Option<&str> {
    authorization
        .split(',')
        .map(|part| part.trim())
        .find_map(|part| part.strip_prefix("SignedHeaders="))
}

/// Compares two byte strings in constant time (a length difference, which is no secret, answers
/// at once).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A client-supplied value, shortened for quoting in an error message.
fn excerpt(value: &str) -> String {
    if value.len() <= MAX_ECHO {
        return value.to_owned();
    }
    let mut end = MAX_ECHO;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &value[..end])
}

/// The `X-Amz-Date` form, `YYYYMMDD'T'HHMMSS'Z'` (UTC).
const AMZ_DATE: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// Seconds since the Unix epoch of an `X-Amz-Date` (`YYYYMMDD'T'HHMMSS'Z'`, UTC, 1970..=9999),
/// or `None` if it is not exactly that form or not a real time.
fn parse_amz_date(value: &str) -> Option<u64> {
    // `[year]` also takes a sign before its four digits; an X-Amz-Date has none, so it is 16 long.
    if value.len() != 16 {
        return None;
    }
    let time = PrimitiveDateTime::parse(value, AMZ_DATE).ok()?;
    u64::try_from(time.assume_utc().unix_timestamp()).ok()
}

/// Formats seconds since the Unix epoch as `YYYYMMDD'T'HHMMSS'Z'`; a time outside the years
/// -9999..=9999 (only an absurd clock or skew gives one) as `unix time <seconds>`. Never panics.
fn format_amz_date(secs: i128) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|time| time.format(AMZ_DATE).ok())
        .unwrap_or_else(|| format!("unix time {secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==";
    const REGION: &str = "us-east-1";
    const ENDPOINT: &str = "http://localhost:4566/";
    const TARGET: &str = "CodePipeline_20150709.PollForJobs";
    const JSON: &str = "application/x-amz-json-1.1";
    const BODY: &[u8] = br#"{"actionTypeId":{"category":"Build","owner":"Custom","provider":"MyBuilder","version":"1"},"maxBatchSize":1}"#;
    /// 2025-01-01T00:00:00Z.
    const T0_SECS: u64 = 1_735_689_600;

    const RUST_SIGNED: &str =
        "content-length;content-type;host;x-amz-date;x-amz-target;x-amz-user-agent";
    const CLI_SIGNED: &str = "content-type;host;user-agent;x-amz-date;x-amz-target";
    const BOTO3_SIGNED: &str = "content-type;host;x-amz-date;x-amz-target";

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0_SECS)
    }

    fn keys() -> HashMap<String, String> {
        HashMap::from([(AKID.to_owned(), SECRET.to_owned())])
    }

    fn verifier() -> Verifier {
        Verifier::new("codepipeline", Duration::from_secs(300))
    }

    /// A request as the server receives it.
    #[derive(Debug, Clone)]
    struct Received {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Received {
        fn verify_with(&self, verifier: &Verifier, now: SystemTime) -> Result<Caller, AuthError> {
            verifier.verify(
                &self.method,
                &self.uri,
                &self.headers,
                &self.body,
                &keys(),
                now,
            )
        }

        fn verify_at(&self, now: SystemTime) -> Result<Caller, AuthError> {
            self.verify_with(&verifier(), now)
        }

        fn verify(&self) -> Result<Caller, AuthError> {
            self.verify_at(t0())
        }

        fn authorization(&self) -> String {
            self.headers["authorization"].to_str().unwrap().to_owned()
        }

        fn signed_headers(&self) -> String {
            signed_headers_of(&self.authorization()).unwrap().to_owned()
        }

        fn signature(&self) -> String {
            let auth = self.authorization();
            auth.rsplit_once("Signature=").unwrap().1.to_owned()
        }

        fn set(&mut self, name: &'static str, value: &str) {
            self.headers
                .insert(name, HeaderValue::from_str(value).unwrap());
        }

        fn with_authorization(&self, value: &str) -> Received {
            let mut r = self.clone();
            r.set("authorization", value);
            r
        }
    }

    /// How a client signs: which headers it hands to the signer, which it adds afterwards.
    struct Client {
        signed: Vec<(String, String)>,
        unsigned: Vec<(String, String)>,
        settings: SigningSettings,
        access_key: String,
        secret: String,
        token: Option<String>,
        region: String,
        service: String,
        time: SystemTime,
        uri: String,
        body: Vec<u8>,
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    impl Client {
        /// Signs exactly `signed` (plus what the signer adds: x-amz-date, token).
        fn new(signed: &[(&str, &str)], unsigned: &[(&str, &str)]) -> Self {
            let mut settings = SigningSettings::default();
            settings.excluded_headers = None;
            Client {
                signed: pairs(signed),
                unsigned: pairs(unsigned),
                settings,
                access_key: AKID.into(),
                secret: SECRET.into(),
                token: None,
                region: REGION.into(),
                service: "codepipeline".into(),
                time: t0(),
                uri: ENDPOINT.into(),
                body: BODY.to_vec(),
            }
        }

        /// The Rust SDK (aws-sdk-codepipeline 1.131.0 probe).
        fn rust_sdk() -> Self {
            let len = BODY.len().to_string();
            Client::new(
                &[
                    ("content-length", &len),
                    ("content-type", JSON),
                    ("host", "localhost:4566"),
                    ("x-amz-target", TARGET),
                    (
                        "x-amz-user-agent",
                        "aws-sdk-rust/1.3.9 ua/2.1 api/codepipeline/1.131.0 os/linux lang/rust/1.95.0",
                    ),
                ],
                &[
                    ("user-agent", "aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0"),
                    (
                        "amz-sdk-invocation-id",
                        "1b8e6f0a-3b1c-4c55-9a42-5d3c0e8f8f11",
                    ),
                    ("amz-sdk-request", "attempt=1; max=3"),
                ],
            )
        }

        /// aws-cli 1.x, which signs user-agent (APIREF example).
        fn aws_cli() -> Self {
            let len = BODY.len().to_string();
            Client::new(
                &[
                    ("content-type", JSON),
                    ("host", "localhost:4566"),
                    ("user-agent", "aws-cli/1.7.38 Python/2.7.9 Darwin/14.4.0"),
                    ("x-amz-target", TARGET),
                ],
                &[("content-length", &len)],
            )
        }

        /// boto3 1.43 (probe): content-length and the SDK headers are not signed.
        fn boto3() -> Self {
            let len = BODY.len().to_string();
            Client::new(
                &[
                    ("content-type", JSON),
                    ("host", "localhost:4566"),
                    ("x-amz-target", TARGET),
                ],
                &[
                    ("content-length", &len),
                    (
                        "user-agent",
                        "Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux lang/python#3.12.3",
                    ),
                ],
            )
        }

        fn sign(&self) -> Received {
            let identity: Identity = Credentials::new(
                &self.access_key,
                &self.secret,
                self.token.clone(),
                None,
                "test",
            )
            .into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(&self.region)
                .name(&self.service)
                .time(self.time)
                .settings(self.settings.clone())
                .build()
                .unwrap()
                .into();
            let request = SignableRequest::new(
                "POST",
                self.uri.as_str(),
                self.signed.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::Bytes(&self.body),
            )
            .unwrap();
            let (instructions, _) = sign(request, &params).unwrap().into_parts();
            let mut headers = HeaderMap::new();
            let all = self.signed.iter().chain(&self.unsigned);
            for (k, v) in all {
                headers.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            for (k, v) in instructions.headers() {
                headers.insert(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            let uri: Uri = self.uri.parse().unwrap();
            if !headers.contains_key("host") {
                // What hyper sends: the authority, with a default port omitted.
                let default_port = matches!(
                    (uri.scheme_str(), uri.port_u16()),
                    (Some("http"), Some(80)) | (Some("https"), Some(443))
                );
                let host = if default_port {
                    uri.host().unwrap()
                } else {
                    uri.authority().unwrap().as_str()
                };
                headers.insert("host", HeaderValue::from_str(host).unwrap());
            }
            Received {
                method: Method::POST,
                uri: uri.path_and_query().unwrap().as_str().parse().unwrap(),
                headers,
                body: self.body.clone(),
            }
        }
    }

    fn caller(region: &str, token: Option<&str>) -> Caller {
        Caller {
            access_key: AKID.into(),
            region: region.into(),
            service: "codepipeline".into(),
            session_token: token.map(str::to_owned),
        }
    }

    fn expect_err(result: Result<Caller, AuthError>, error_type: &str) -> AuthError {
        let err = result.expect_err("verification should fail");
        assert_eq!(err.error_type(), error_type, "{err:?}");
        err
    }

    // --- SDK-shaped requests that must verify -------------------------------------------

    #[test]
    fn rust_sdk_signed_headers_verify_and_identify_the_caller() {
        let req = Client::rust_sdk().sign();
        assert_eq!(req.signed_headers(), RUST_SIGNED);
        assert_eq!(req.verify(), Ok(caller(REGION, None)));
    }

    #[test]
    fn rust_sdk_default_signing_settings_verify() {
        // What aws-runtime does: SigningSettings::default() (which drops user-agent), the full
        // endpoint URI and no Host header (the signer derives it; hyper sends the same value).
        for (endpoint, region) in [
            ("https://codepipeline.eu-west-1.amazonaws.com/", "eu-west-1"),
            ("http://localhost:4566/", REGION),
            // The signer omits a default port from the host it signs, and so does hyper.
            ("http://127.0.0.1:80/", REGION),
        ] {
            let len = BODY.len().to_string();
            let mut client = Client::new(
                &[
                    ("content-type", JSON),
                    ("content-length", &len),
                    ("x-amz-target", TARGET),
                    ("user-agent", "aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0"),
                    (
                        "x-amz-user-agent",
                        "aws-sdk-rust/1.3.9 api/codepipeline/1.131.0",
                    ),
                ],
                &[(
                    "amz-sdk-invocation-id",
                    "0e0f2a55-8d5c-4bd7-a7a0-0c4a3a7d6c1e",
                )],
            );
            client.settings = SigningSettings::default();
            client.uri = endpoint.into();
            client.region = region.into();
            let req = client.sign();
            assert_eq!(req.signed_headers(), RUST_SIGNED, "{endpoint}");
            assert_eq!(req.verify(), Ok(caller(region, None)), "{endpoint}");
        }
    }

    #[test]
    fn aws_cli_signing_user_agent_verifies() {
        let req = Client::aws_cli().sign();
        assert_eq!(req.signed_headers(), CLI_SIGNED);
        assert_eq!(req.verify(), Ok(caller(REGION, None)));
    }

    #[test]
    fn boto3_signed_headers_verify() {
        let req = Client::boto3().sign();
        assert_eq!(req.signed_headers(), BOTO3_SIGNED);
        assert_eq!(req.verify(), Ok(caller(REGION, None)));
    }

    #[test]
    fn unsigned_headers_added_or_changed_after_signing_are_ignored() {
        let mut req = Client::boto3().sign();
        req.set(
            "amz-sdk-invocation-id",
            "6a1b2c3d-0000-4000-8000-000000000001",
        );
        req.set("amz-sdk-request", "attempt=2; max=4");
        req.set("user-agent", "something else entirely");
        req.set("content-length", "999");
        req.headers.insert(
            "x-not-ascii",
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        assert_eq!(req.verify(), Ok(caller(REGION, None)));
    }

    #[test]
    fn session_token_signed_verifies_and_is_reported() {
        let mut client = Client::boto3();
        client.token = Some(TOKEN.into());
        let req = client.sign();
        assert_eq!(
            req.signed_headers(),
            "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        );
        assert_eq!(req.verify(), Ok(caller(REGION, Some(TOKEN))));
    }

    #[test]
    fn session_token_with_rust_sdk_default_settings_verifies() {
        let mut client = Client::rust_sdk();
        client.settings = SigningSettings::default();
        client.token = Some(TOKEN.into());
        let req = client.sign();
        assert!(req.signed_headers().contains("x-amz-security-token"));
        assert_eq!(req.verify(), Ok(caller(REGION, Some(TOKEN))));
    }

    #[test]
    fn session_token_sent_but_not_signed_verifies_and_is_reported() {
        let mut client = Client::boto3();
        client.token = Some(TOKEN.into());
        client.settings.session_token_mode = SessionTokenMode::Exclude;
        let req = client.sign();
        assert_eq!(req.signed_headers(), BOTO3_SIGNED);
        assert_eq!(req.verify(), Ok(caller(REGION, Some(TOKEN))));
    }

    #[test]
    fn changed_session_token_is_invalid_signature() {
        let mut client = Client::boto3();
        client.token = Some(TOKEN.into());
        let mut req = client.sign();
        req.set("x-amz-security-token", "AnotherToken");
        let err = expect_err(req.verify(), "InvalidSignatureException");
        assert_eq!(err, AuthError::SignatureMismatch);
    }

    #[test]
    fn signed_session_token_removed_from_request_is_incomplete_signature() {
        let mut client = Client::boto3();
        client.token = Some(TOKEN.into());
        let mut req = client.sign();
        req.headers.remove("x-amz-security-token");
        let err = expect_err(req.verify(), "IncompleteSignatureException");
        assert_eq!(
            err,
            AuthError::SignedHeaderMissing {
                header: "x-amz-security-token".into()
            }
        );
    }

    #[test]
    fn any_region_in_scope_is_accepted_and_reported() {
        let mut client = Client::boto3();
        client.region = "ap-southeast-2".into();
        assert_eq!(client.sign().verify(), Ok(caller("ap-southeast-2", None)));
    }

    #[test]
    fn empty_body_and_empty_object_verify() {
        for body in [&b""[..], b"{}"] {
            let mut client = Client::boto3();
            client.body = body.to_vec();
            assert_eq!(client.sign().verify(), Ok(caller(REGION, None)));
        }
    }

    #[test]
    fn request_without_host_header_verifies_against_the_uri_authority() {
        // HTTP/2 puts the host in `:authority`, which the server sees in the URI.
        let mut req = Client::boto3().sign();
        req.headers.remove("host");
        req.uri = Uri::from_static("http://localhost:4566/");
        assert_eq!(req.verify(), Ok(caller(REGION, None)));

        req.uri = Uri::from_static("/");
        let err = expect_err(req.verify(), "IncompleteSignatureException");
        assert_eq!(
            err,
            AuthError::SignedHeaderMissing {
                header: "host".into()
            }
        );
    }

    #[test]
    fn query_string_is_covered_by_the_signature() {
        let mut client = Client::boto3();
        client.uri = "http://localhost:4566/?b=2&a=1%20x&c".into();
        let mut req = client.sign();
        assert_eq!(req.uri, "/?b=2&a=1%20x&c");
        assert_eq!(req.verify(), Ok(caller(REGION, None)));

        req.uri = Uri::from_static("/?b=3&a=1%20x&c");
        let err = expect_err(req.verify(), "InvalidSignatureException");
        assert_eq!(err, AuthError::SignatureMismatch);
    }

    // --- Signatures computed by other implementations ----------------------------------

    /// Parses `METHOD target HTTP/1.1`, `Name:value` lines, a blank line and the body, as a
    /// server would receive it (header values with surrounding whitespace stripped, like hyper).
    fn parse_raw(raw: &str) -> Received {
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
        let mut lines = head.lines();
        let mut request_line = lines.next().unwrap().split(' ');
        let method: Method = request_line.next().unwrap().parse().unwrap();
        let uri: Uri = request_line.next().unwrap().parse().unwrap();
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
        Received {
            method,
            uri,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn at(amz_date: &str) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(parse_amz_date(amz_date).unwrap())
    }

    /// Requests from the AWS SigV4 test suite (`aws-signing-test-suite/v4/*/header-signed-request.txt`
    /// in aws-sigv4), signed for service `service` at 20150830T123600Z.
    const AWS_SUITE: &[(&str, &str)] = &[
        (
            "post-vanilla",
            "POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "post-header-value-case",
            "POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:VALUE1\nX-Amz-Date:20150830T123600Z\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;my-header1;x-amz-date, \
             Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        ),
        (
            "get-header-value-trim",
            "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1: value1\nMy-Header2: \"a   b   c\"\n\
             X-Amz-Date:20150830T123600Z\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;my-header1;my-header2;x-amz-date, \
             Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        ),
        (
            "get-header-key-duplicate",
            "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value2\nMy-Header1:value2\n\
             My-Header1:value1\nX-Amz-Date:20150830T123600Z\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;my-header1;x-amz-date, \
             Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET /?Param2=value2&Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n\
             X-Amz-Date:20150830T123600Z\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "get-vanilla-with-session-token",
            "GET / HTTP/1.1\nHost:example.amazonaws.com\n\
             X-Amz-Security-Token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\
             X-Amz-Date:20150830T123600Z\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded\nHost:example.amazonaws.com\n\
             Content-Length:13\nX-Amz-Date:20150830T123600Z\n\
             x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, \
             Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b\n\nParam1=value1",
        ),
    ];

    #[test]
    fn aws_signature_test_suite_requests_verify() {
        let v = Verifier::new("service", DEFAULT_SKEW);
        for (name, raw) in AWS_SUITE {
            let req = parse_raw(raw);
            let result = req.verify_with(&v, at("20150830T123600Z"));
            let token = name
                .ends_with("session-token")
                .then_some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267");
            let mut expected = caller(REGION, token);
            expected.service = "service".into();
            assert_eq!(result, Ok(expected), "{name}");

            // And each of them fails once anything signed changes.
            let mut tampered = req.clone();
            tampered.body.extend_from_slice(b"x");
            assert_eq!(
                tampered.verify_with(&v, at("20150830T123600Z")),
                Err(AuthError::SignatureMismatch),
                "{name}"
            );
        }
    }

    /// Requests signed by botocore 1.43.11 (boto3 `poll_for_jobs`, captured at `before-send`;
    /// urllib3 adds `Host`). The second one uses session credentials.
    const BOTO3_REAL: &[(&str, Option<&str>)] = &[
        (
            "POST / HTTP/1.1\nHost:localhost:4566\n\
             X-Amz-Target:CodePipeline_20150709.PollForJobs\n\
             Content-Type:application/x-amz-json-1.1\n\
             User-Agent:Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v857 md/arch#x86_64 \
             lang/python#3.11.7 md/pyimpl#CPython m/Z,D,N,b,e cfg/retry-mode#legacy Botocore/1.43.11\n\
             X-Amz-Date:20261128T224133Z\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/us-east-1/codepipeline/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=c171780138da00b5a7119288a136a37bfeb0cb5da7710832b1f38b8fe6fac619\n\
             amz-sdk-invocation-id:27cdd871-7bdf-4a13-9703-2286896ebe3f\n\
             amz-sdk-request:attempt=1\nContent-Length:118\n\n\
             {\"actionTypeId\": {\"category\": \"Build\", \"owner\": \"Custom\", \"provider\": \"MyBuilder\", \
             \"version\": \"1\"}, \"maxBatchSize\": 1}",
            None,
        ),
        (
            "POST / HTTP/1.1\nHost:localhost:4566\n\
             X-Amz-Target:CodePipeline_20150709.PollForJobs\n\
             Content-Type:application/x-amz-json-1.1\n\
             User-Agent:Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v857 md/arch#x86_64 \
             lang/python#3.11.7 md/pyimpl#CPython m/Z,D,N,b,e cfg/retry-mode#legacy Botocore/1.43.11\n\
             X-Amz-Date:20261128T224133Z\n\
             X-Amz-Security-Token:IQoJb3JpZ2luX2VjEXAMPLETOKEN\n\
             Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/us-east-1/codepipeline/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
             Signature=2f83930b942676c4aab54a422bb17805519467daa06930990146badb2969c7e8\n\
             amz-sdk-invocation-id:2e369030-3479-4f35-92ed-f0ead9bf104a\n\
             amz-sdk-request:attempt=1\nContent-Length:118\n\n\
             {\"actionTypeId\": {\"category\": \"Build\", \"owner\": \"Custom\", \"provider\": \"MyBuilder\", \
             \"version\": \"1\"}, \"maxBatchSize\": 1}",
            Some("IQoJb3JpZ2luX2VjEXAMPLETOKEN"),
        ),
    ];

    #[test]
    fn real_boto3_requests_verify() {
        for (raw, token) in BOTO3_REAL {
            let req = parse_raw(raw);
            assert_eq!(req.body.len(), 118);
            let now = at("20261128T224133Z");
            assert_eq!(req.verify_at(now), Ok(caller(REGION, *token)));

            let mut tampered = req.clone();
            tampered.set("x-amz-target", "CodePipeline_20150709.GetJobDetails");
            assert_eq!(tampered.verify_at(now), Err(AuthError::SignatureMismatch));
            let err = req.verify_at(now + Duration::from_secs(301)).unwrap_err();
            assert!(err.to_string().starts_with("Signature expired"), "{err}");
        }
    }

    /// Requests signed by botocore 1.43.11's `SigV4Auth` with `user-agent` removed from its
    /// blacklist, as aws-cli 1.7 signed (region eu-central-1), without and with a query string.
    const CLI_REAL: &[&str] = &[
        "POST / HTTP/1.1\nHost:localhost:4566\n\
         X-Amz-Target:CodePipeline_20150709.AcknowledgeJob\n\
         Content-Type:application/x-amz-json-1.1\n\
         User-Agent:aws-cli/1.7.38 Python/2.7.9 Darwin/14.4.0\n\
         X-Amz-Date:20261128T224137Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/eu-central-1/codepipeline/aws4_request, \
         SignedHeaders=content-type;host;user-agent;x-amz-date;x-amz-target, \
         Signature=9f9ce8403c5b962c8afce23131a92f1f88cdd40a44398886ef10f31ad18d3c22\n\n\
         {\"jobId\": \"11111111-2222-3333-4444-555555555555\", \"nonce\": \"1\"}",
        "POST /?b=2&a=1%20x&c= HTTP/1.1\nHost:localhost:4566\n\
         X-Amz-Target:CodePipeline_20150709.AcknowledgeJob\n\
         Content-Type:application/x-amz-json-1.1\n\
         User-Agent:aws-cli/1.7.38 Python/2.7.9 Darwin/14.4.0\n\
         X-Amz-Date:20261128T224137Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/eu-central-1/codepipeline/aws4_request, \
         SignedHeaders=content-type;host;user-agent;x-amz-date;x-amz-target, \
         Signature=0cb36dc9f50fd797a76c04b6407566f7b4aa787569a898a32439a70d3093ddc4\n\n\
         {\"jobId\": \"11111111-2222-3333-4444-555555555555\", \"nonce\": \"1\"}",
    ];

    #[test]
    fn real_botocore_requests_signing_user_agent_verify() {
        for raw in CLI_REAL {
            let req = parse_raw(raw);
            let now = at("20261128T224137Z");
            assert_eq!(
                req.verify_at(now),
                Ok(caller("eu-central-1", None)),
                "{raw}"
            );

            let mut tampered = req.clone();
            tampered.set("user-agent", "aws-cli/2.0.0");
            assert_eq!(tampered.verify_at(now), Err(AuthError::SignatureMismatch));
        }
    }

    // --- Tampering -----------------------------------------------------------------------

    #[test]
    fn tampered_body_is_invalid_signature() {
        let mut req = Client::rust_sdk().sign();
        req.body = br#"{"actionTypeId":{"category":"Deploy"},"maxBatchSize":1}"#.to_vec();
        let err = expect_err(req.verify(), "InvalidSignatureException");
        assert_eq!(err, AuthError::SignatureMismatch);
        assert!(
            err.to_string().starts_with(
                "The request signature we calculated does not match the signature you provided."
            ),
            "{err}"
        );
    }

    #[test]
    fn changed_signed_header_value_is_invalid_signature() {
        for (name, value) in [
            ("x-amz-target", "CodePipeline_20150709.AcknowledgeJob"),
            ("content-type", "application/json"),
            ("host", "localhost:4567"),
            ("x-amz-user-agent", "aws-sdk-rust/0.0.0"),
            ("content-length", "1"),
        ] {
            let mut req = Client::rust_sdk().sign();
            req.set(name, value);
            let err = expect_err(req.verify(), "InvalidSignatureException");
            assert_eq!(err, AuthError::SignatureMismatch, "{name}");
        }
        // aws-cli signs user-agent, so changing it breaks the signature.
        let mut req = Client::aws_cli().sign();
        req.set("user-agent", "aws-cli/2.0.0");
        expect_err(req.verify(), "InvalidSignatureException");
    }

    #[test]
    fn changed_method_is_invalid_signature() {
        let mut req = Client::boto3().sign();
        req.method = Method::PUT;
        let err = expect_err(req.verify(), "InvalidSignatureException");
        assert_eq!(err, AuthError::SignatureMismatch);
    }

    #[test]
    fn changed_x_amz_date_within_skew_is_invalid_signature() {
        let mut req = Client::boto3().sign();
        req.set("x-amz-date", "20250101T000001Z");
        let err = expect_err(req.verify(), "InvalidSignatureException");
        assert_eq!(err, AuthError::SignatureMismatch);
    }

    #[test]
    fn changed_signature_is_invalid_signature() {
        let req = Client::boto3().sign();
        let auth = req.authorization();
        let sig = req.signature();
        let flipped: String = sig
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 10 {
                    if c == '0' { '1' } else { '0' }
                } else {
                    c
                }
            })
            .collect();
        for bad in [
            flipped,
            sig.to_uppercase(),
            sig[..63].to_owned(),
            format!("{sig}0"),
        ] {
            let req = req.with_authorization(&auth.replace(&sig, &bad));
            let err = expect_err(req.verify(), "InvalidSignatureException");
            assert_eq!(err, AuthError::SignatureMismatch);
        }
    }

    #[test]
    fn signed_headers_not_in_canonical_form_is_invalid_signature() {
        let req = Client::boto3().sign();
        let auth = req.authorization();
        for list in [
            "host;content-type;x-amz-date;x-amz-target",
            "Content-Type;Host;X-Amz-Date;X-Amz-Target",
            "content-type;host;host;x-amz-date;x-amz-target",
        ] {
            let req = req.with_authorization(&auth.replace(BOTO3_SIGNED, list));
            let err = expect_err(req.verify(), "InvalidSignatureException");
            assert_eq!(
                err,
                AuthError::SignedHeadersMismatch {
                    provided: list.into(),
                    canonical: BOTO3_SIGNED.into(),
                }
            );
        }
    }

    #[test]
    fn fewer_signed_headers_than_the_client_signed_is_invalid_signature() {
        // Claiming x-amz-target was not signed changes the canonical request.
        let req = Client::boto3().sign();
        let auth = req
            .authorization()
            .replace(BOTO3_SIGNED, "content-type;host;x-amz-date");
        let err = expect_err(
            req.with_authorization(&auth).verify(),
            "InvalidSignatureException",
        );
        assert_eq!(err, AuthError::SignatureMismatch);
    }

    // --- Keys, services, secrets ---------------------------------------------------------

    #[test]
    fn unknown_access_key_is_unrecognized_client() {
        let mut client = Client::boto3();
        client.access_key = "AKIDUNKNOWN0000".into();
        let err = expect_err(client.sign().verify(), "UnrecognizedClientException");
        let message = err.to_string();
        assert!(
            message.starts_with("The security token included in the request is invalid."),
            "{message}"
        );
        assert!(message.contains("AKIDUNKNOWN0000"), "{message}");
    }

    #[test]
    fn wrong_secret_is_invalid_signature_and_the_message_leaks_nothing() {
        let good = Client::boto3().sign();
        let mut client = Client::boto3();
        client.secret = "not-the-secret-key-at-all".into();
        let req = client.sign();
        let err = expect_err(req.verify(), "InvalidSignatureException");
        assert_eq!(err, AuthError::SignatureMismatch);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(SECRET));
        assert!(!shown.contains("not-the-secret-key-at-all"));
        assert!(!shown.contains(&good.signature()));
        assert!(!shown.contains(&req.signature()));
    }

    #[test]
    fn no_error_message_contains_the_secret_or_the_expected_signature() {
        let good = Client::rust_sdk().sign();
        let expected = good.signature();
        let mut cases = Vec::new();
        let mut body = good.clone();
        body.body.push(b' ');
        cases.push(body);
        cases.push(good.with_authorization(&good.authorization().replace(&expected, "00")));
        cases.push(good.with_authorization(&good.authorization().replace(
            RUST_SIGNED,
            "host;content-length;content-type;x-amz-date;x-amz-target;x-amz-user-agent",
        )));
        for req in cases {
            for now in [
                t0(),
                t0() + Duration::from_secs(3600),
                t0() - Duration::from_secs(3600),
            ] {
                let err = req.verify_at(now).unwrap_err();
                let shown = format!("{err} {err:?}");
                assert!(!shown.contains(SECRET), "{shown}");
                assert!(!shown.contains(&expected), "{shown}");
            }
        }
    }

    #[test]
    fn wrong_service_in_scope_is_invalid_signature() {
        let mut client = Client::boto3();
        client.service = "s3".into();
        let err = expect_err(client.sign().verify(), "InvalidSignatureException");
        assert_eq!(
            err,
            AuthError::WrongService {
                expected: "codepipeline".into(),
                actual: "s3".into()
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("'codepipeline'") && message.contains("'s3'"),
            "{message}"
        );
    }

    #[test]
    fn verifier_for_another_service_checks_that_service() {
        let mut client = Client::boto3();
        client.service = "apica".into();
        let req = client.sign();
        let v = Verifier::new("apica", DEFAULT_SKEW);
        let ok = req.verify_with(&v, t0()).unwrap();
        assert_eq!(ok.service, "apica");
        assert_eq!(Verifier::default().service(), "codepipeline");
        assert_eq!(Verifier::default().skew(), Duration::from_secs(300));
    }

    // --- Missing and malformed authorization -----------------------------------------------

    #[test]
    fn missing_authorization_is_missing_authentication_token() {
        let mut req = Client::boto3().sign();
        req.headers.remove("authorization");
        let err = expect_err(req.verify(), "MissingAuthenticationTokenException");
        assert_eq!(err, AuthError::MissingAuthorization);
        assert_eq!(err.to_string(), "Missing Authentication Token");
        // An empty or blank header counts as none.
        for blank in ["", "   "] {
            let err = expect_err(
                req.with_authorization(blank).verify(),
                "MissingAuthenticationTokenException",
            );
            assert_eq!(err, AuthError::MissingAuthorization);
        }
    }

    #[test]
    fn malformed_authorization_forms_are_incomplete_signature() {
        let req = Client::boto3().sign();
        let sig = req.signature();
        let cred = format!("{AKID}/20250101/us-east-1/codepipeline/aws4_request");
        let full = |c: &str, h: &str, s: &str| {
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}")
        };
        let cases: Vec<(String, AuthError)> = vec![
            (
                "AWS4-HMAC-SHA256".into(),
                AuthError::MissingAuthorizationParameters {
                    parameters: vec!["Credential", "SignedHeaders", "Signature"],
                },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={BOTO3_SIGNED}"),
                AuthError::MissingAuthorizationParameters {
                    parameters: vec!["Signature"],
                },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature={sig}"),
                AuthError::MissingAuthorizationParameters {
                    parameters: vec!["Credential", "SignedHeaders"],
                },
            ),
            (
                format!("AWS3-HTTPS AWSAccessKeyId={AKID},Algorithm=HmacSHA256,Signature=x"),
                AuthError::UnsupportedAlgorithm {
                    algorithm: "AWS3-HTTPS".into(),
                },
            ),
            (
                "Bearer eyJhbGciOiJIUzI1NiJ9".into(),
                AuthError::UnsupportedAlgorithm {
                    algorithm: "Bearer".into(),
                },
            ),
            (
                full(&cred, BOTO3_SIGNED, &sig).replace("AWS4-HMAC-SHA256", "aws4-hmac-sha256"),
                AuthError::UnsupportedAlgorithm {
                    algorithm: "aws4-hmac-sha256".into(),
                },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential, SignedHeaders={BOTO3_SIGNED}"),
                AuthError::MalformedAuthorization {
                    reason: "parameter 'Credential' has no '=' sign".into(),
                },
            ),
            (
                format!("{}, Signature={sig}", full(&cred, BOTO3_SIGNED, &sig)),
                AuthError::MalformedAuthorization {
                    reason: "parameter 'Signature' appears more than once".into(),
                },
            ),
        ];
        let mut cases = cases;
        for bad_cred in [
            format!("{AKID}/20250101/us-east-1/codepipeline"),
            format!("{AKID}/20250101/us-east-1/codepipeline/aws4_request/extra"),
            format!("{AKID}/20250101/us-east-1/codepipeline/aws5_request"),
            format!("{AKID}/2025011/us-east-1/codepipeline/aws4_request"),
            format!("{AKID}/2025O101/us-east-1/codepipeline/aws4_request"),
            format!("{AKID}/20250101//codepipeline/aws4_request"),
            "/20250101/us-east-1/codepipeline/aws4_request".into(),
            AKID.into(),
        ] {
            cases.push((
                full(&bad_cred, BOTO3_SIGNED, &sig),
                AuthError::MalformedCredential {
                    credential: bad_cred.clone(),
                },
            ));
        }
        for (list, reason) in [
            (
                "content-type;x-amz-date;x-amz-target",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ),
            (
                "content-type;host;x-amz-target",
                "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
            ),
            (
                "content-type;host;;x-amz-date",
                "'' is not a valid header name",
            ),
            (
                "content-type;host name;x-amz-date",
                "'host name' is not a valid header name",
            ),
        ] {
            cases.push((
                full(&cred, list, &sig),
                AuthError::MalformedSignedHeaders {
                    reason: reason.into(),
                },
            ));
        }
        cases.push((
            full(
                &cred,
                "content-type;host;x-amz-date;x-amz-target;x-custom",
                &sig,
            ),
            AuthError::SignedHeaderMissing {
                header: "x-custom".into(),
            },
        ));
        cases.push((
            full(&cred.replace("20250101", "20250102"), BOTO3_SIGNED, &sig),
            AuthError::CredentialDateMismatch {
                credential_date: "20250102".into(),
                request_date: "20250101".into(),
                request_date_time: "20250101T000000Z".into(),
            },
        ));
        for (auth, expected) in cases {
            let err = expect_err(
                req.with_authorization(&auth).verify(),
                "IncompleteSignatureException",
            );
            assert_eq!(err, expected, "Authorization: {auth}");
        }
    }

    #[test]
    fn missing_authorization_parameters_message_has_the_aws_shape() {
        let err = AuthError::MissingAuthorizationParameters {
            parameters: vec!["Credential", "Signature"],
        };
        assert_eq!(
            err.to_string(),
            "Authorization header requires 'Credential' parameter. \
             Authorization header requires 'Signature' parameter."
        );
    }

    #[test]
    fn parameters_may_come_in_any_order_with_any_spacing() {
        let req = Client::boto3().sign();
        let sig = req.signature();
        let cred = format!("{AKID}/20250101/us-east-1/codepipeline/aws4_request");
        for auth in [
            format!(
                "AWS4-HMAC-SHA256 Signature={sig},SignedHeaders={BOTO3_SIGNED},Credential={cred}"
            ),
            format!(
                "AWS4-HMAC-SHA256   Credential={cred} ,\tSignedHeaders={BOTO3_SIGNED},, Signature={sig} "
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={BOTO3_SIGNED}, Unknown=1, Signature={sig}"
            ),
        ] {
            assert_eq!(
                req.with_authorization(&auth).verify(),
                Ok(caller(REGION, None)),
                "{auth}"
            );
        }
    }

    #[test]
    fn missing_or_unparsable_x_amz_date_is_incomplete_signature() {
        let mut req = Client::boto3().sign();
        let mut without = req.clone();
        without.headers.remove("x-amz-date");
        assert_eq!(
            expect_err(without.verify(), "IncompleteSignatureException"),
            AuthError::MissingDate
        );
        // A Date header does not stand in for X-Amz-Date.
        without.set("date", "Wed, 01 Jan 2025 00:00:00 GMT");
        assert_eq!(
            expect_err(without.verify(), "IncompleteSignatureException"),
            AuthError::MissingDate
        );
        for bad in [
            "2025-01-01T00:00:00Z",
            "20250101T000000",
            "20250101 000000Z",
            "20250230T000000Z",
            "20250101T240000Z",
            "20250101T235960Z",
            "20251301T000000Z",
            "19691231T235959Z",
            "2025010aT000000Z",
            "+2025101T000000Z",
            "",
        ] {
            req.set("x-amz-date", bad);
            assert_eq!(
                expect_err(req.verify(), "IncompleteSignatureException"),
                AuthError::MalformedDate { value: bad.into() },
                "{bad}"
            );
        }
        req.headers.insert(
            "x-amz-date",
            HeaderValue::from_bytes(b"20250101T00\xff000Z").unwrap(),
        );
        expect_err(req.verify(), "IncompleteSignatureException");
    }

    #[test]
    fn signed_header_absent_from_request_is_incomplete_signature() {
        let mut req = Client::rust_sdk().sign();
        req.headers.remove("x-amz-user-agent");
        assert_eq!(
            expect_err(req.verify(), "IncompleteSignatureException"),
            AuthError::SignedHeaderMissing {
                header: "x-amz-user-agent".into()
            }
        );
    }

    #[test]
    fn several_authorization_headers_are_incomplete_signature() {
        let mut req = Client::boto3().sign();
        let auth = req.headers["authorization"].clone();
        req.headers.append("authorization", auth);
        let err = expect_err(req.verify(), "IncompleteSignatureException");
        assert!(matches!(err, AuthError::MalformedAuthorization { .. }));
    }

    #[test]
    fn non_ascii_values_are_rejected_without_panicking() {
        let req = Client::boto3().sign();
        let mut bad_auth = req.clone();
        bad_auth.headers.insert(
            "authorization",
            HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff\xfe").unwrap(),
        );
        assert!(matches!(
            expect_err(bad_auth.verify(), "IncompleteSignatureException"),
            AuthError::MalformedAuthorization { .. }
        ));

        let mut bad_signed = req.clone();
        bad_signed.headers.insert(
            "x-amz-target",
            HeaderValue::from_bytes(b"CodePipeline_20150709.Poll\xc3\xa9").unwrap(),
        );
        assert_eq!(
            expect_err(bad_signed.verify(), "IncompleteSignatureException"),
            AuthError::UnsupportedHeaderValue {
                header: "x-amz-target".into()
            }
        );

        let mut bad_token = req.clone();
        bad_token.headers.insert(
            "x-amz-security-token",
            HeaderValue::from_bytes(b"tok\xff").unwrap(),
        );
        // Unsigned and unreadable: ignored.
        assert_eq!(bad_token.verify(), Ok(caller(REGION, None)));
    }

    #[test]
    fn huge_headers_are_rejected_with_bounded_messages() {
        let req = Client::boto3().sign();
        let huge = format!("AWS4-HMAC-SHA256 Credential={}", "A".repeat(1 << 20));
        let err = expect_err(
            req.with_authorization(&huge).verify(),
            "IncompleteSignatureException",
        );
        assert!(err.to_string().len() < 1024);

        let huge_alg = "X".repeat(1 << 20);
        let err = expect_err(
            req.with_authorization(&huge_alg).verify(),
            "IncompleteSignatureException",
        );
        assert!(err.to_string().len() < 1024);

        let mut names: Vec<String> = (0..10_000).map(|i| format!("x-h{i:05}")).collect();
        names.extend(["host".into(), "x-amz-date".into()]);
        names.sort();
        let list = names.join(";");
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20250101/us-east-1/codepipeline/aws4_request, \
             SignedHeaders={list}, Signature={}",
            req.signature()
        );
        let err = expect_err(
            req.with_authorization(&auth).verify(),
            "IncompleteSignatureException",
        );
        assert_eq!(
            err,
            AuthError::SignedHeaderMissing {
                header: "x-h00000".into()
            }
        );

        // A huge signed header value is simply hashed.
        let mut client = Client::boto3();
        let big = "v".repeat(1 << 20);
        client.signed.push(("x-big".into(), big));
        assert_eq!(client.sign().verify(), Ok(caller(REGION, None)));
    }

    // --- Clock skew ----------------------------------------------------------------------

    #[test]
    fn x_amz_date_six_minutes_old_is_signature_expired() {
        let req = Client::boto3().sign();
        let err = expect_err(
            req.verify_at(t0() + Duration::from_secs(6 * 60)),
            "InvalidSignatureException",
        );
        assert_eq!(
            err.to_string(),
            "Signature expired: 20250101T000000Z is now earlier than 20250101T000100Z \
             (20250101T000600Z - 5 min.)"
        );
    }

    #[test]
    fn x_amz_date_six_minutes_ahead_is_signature_not_yet_current() {
        let req = Client::boto3().sign();
        let err = expect_err(
            req.verify_at(t0() - Duration::from_secs(6 * 60)),
            "InvalidSignatureException",
        );
        assert_eq!(
            err.to_string(),
            "Signature not yet current: 20250101T000000Z is still later than 20241231T235900Z \
             (20241231T235400Z + 5 min.)"
        );
    }

    #[test]
    fn x_amz_date_within_skew_verifies() {
        let req = Client::boto3().sign();
        for offset in [0, 1, 4 * 60, 5 * 60] {
            let offset = Duration::from_secs(offset);
            assert_eq!(req.verify_at(t0() + offset), Ok(caller(REGION, None)));
            assert_eq!(req.verify_at(t0() - offset), Ok(caller(REGION, None)));
        }
        // Sub-second parts of `now` do not matter.
        let now = t0() + Duration::from_millis(300_999);
        assert_eq!(req.verify_at(now), Ok(caller(REGION, None)));
        let now = t0() + Duration::from_secs(301);
        expect_err(req.verify_at(now), "InvalidSignatureException");
    }

    #[test]
    fn skew_window_is_configurable_and_named_in_the_message() {
        let req = Client::boto3().sign();
        let v = Verifier::new("codepipeline", Duration::from_secs(90));
        assert!(req.verify_with(&v, t0() + Duration::from_secs(90)).is_ok());
        let err = req
            .verify_with(&v, t0() + Duration::from_secs(91))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Signature expired: 20250101T000000Z is now earlier than 20250101T000001Z \
             (20250101T000131Z - 90 sec.)"
        );
    }

    #[test]
    fn expired_request_with_an_unknown_key_reports_the_key() {
        let mut client = Client::boto3();
        client.access_key = "AKIDOTHER".into();
        let err = client
            .sign()
            .verify_at(t0() + Duration::from_secs(3600))
            .unwrap_err();
        assert_eq!(err.error_type(), "UnrecognizedClientException");
    }

    #[test]
    fn extreme_clocks_and_skews_never_panic() {
        let req = Client::boto3().sign();
        let nows = [
            UNIX_EPOCH,
            UNIX_EPOCH - Duration::from_secs(1 << 40),
            UNIX_EPOCH + Duration::from_secs(1 << 40),
            t0(),
        ];
        let skews = [Duration::ZERO, Duration::from_secs(u64::MAX), Duration::MAX];
        for now in nows {
            for skew in skews {
                let v = Verifier::new("codepipeline", skew);
                let result = req.verify_with(&v, now);
                if skew >= Duration::from_secs(1 << 41) || now == t0() {
                    assert_eq!(result, Ok(caller(REGION, None)), "{now:?} {skew:?}");
                } else {
                    let err = result.unwrap_err();
                    assert_eq!(err.error_type(), "InvalidSignatureException");
                }
            }
        }
        let mut future = Client::boto3();
        future.time = UNIX_EPOCH + Duration::from_secs(253_402_300_799); // 9999-12-31T23:59:59Z
        let req = future.sign();
        assert_eq!(req.headers["x-amz-date"], "99991231T235959Z");
        let err = req.verify_at(t0()).unwrap_err();
        assert_eq!(err.error_type(), "InvalidSignatureException");
        assert!(req.verify_at(future.time).is_ok());
    }

    // --- Error mapping and helpers -------------------------------------------------------

    #[test]
    fn error_types_are_the_aws_json_shapes() {
        let s = String::new;
        let cases = [
            (
                AuthError::MissingAuthorization,
                "MissingAuthenticationTokenException",
            ),
            (
                AuthError::MalformedAuthorization { reason: s() },
                "IncompleteSignatureException",
            ),
            (
                AuthError::UnsupportedAlgorithm { algorithm: s() },
                "IncompleteSignatureException",
            ),
            (
                AuthError::MissingAuthorizationParameters { parameters: vec![] },
                "IncompleteSignatureException",
            ),
            (
                AuthError::MalformedCredential { credential: s() },
                "IncompleteSignatureException",
            ),
            (AuthError::MissingDate, "IncompleteSignatureException"),
            (
                AuthError::MalformedDate { value: s() },
                "IncompleteSignatureException",
            ),
            (
                AuthError::CredentialDateMismatch {
                    credential_date: s(),
                    request_date: s(),
                    request_date_time: s(),
                },
                "IncompleteSignatureException",
            ),
            (
                AuthError::MalformedSignedHeaders { reason: s() },
                "IncompleteSignatureException",
            ),
            (
                AuthError::SignedHeaderMissing { header: s() },
                "IncompleteSignatureException",
            ),
            (
                AuthError::UnsupportedHeaderValue { header: s() },
                "IncompleteSignatureException",
            ),
            (
                AuthError::Unsignable { reason: s() },
                "IncompleteSignatureException",
            ),
            (
                AuthError::UnknownAccessKey { access_key: s() },
                "UnrecognizedClientException",
            ),
            (
                AuthError::WrongService {
                    expected: s(),
                    actual: s(),
                },
                "InvalidSignatureException",
            ),
            (
                AuthError::SignatureExpired {
                    request_time: s(),
                    limit: s(),
                    now: s(),
                    skew: s(),
                },
                "InvalidSignatureException",
            ),
            (
                AuthError::SignatureNotYetCurrent {
                    request_time: s(),
                    limit: s(),
                    now: s(),
                    skew: s(),
                },
                "InvalidSignatureException",
            ),
            (
                AuthError::SignedHeadersMismatch {
                    provided: s(),
                    canonical: s(),
                },
                "InvalidSignatureException",
            ),
            (AuthError::SignatureMismatch, "InvalidSignatureException"),
        ];
        for (err, error_type) in cases {
            assert_eq!(err.error_type(), error_type, "{err:?}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"bbcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abc", b"abcdef"));
    }

    #[test]
    fn amz_dates_round_trip_and_reject_impossible_times() {
        for (text, secs) in [
            ("19700101T000000Z", 0),
            ("20250101T000000Z", T0_SECS),
            ("20240229T235959Z", 1_709_251_199),
            ("20000229T120000Z", 951_825_600),
            ("99991231T235959Z", 253_402_300_799),
        ] {
            assert_eq!(parse_amz_date(text), Some(secs), "{text}");
            assert_eq!(format_amz_date(i128::from(secs)), text);
        }
        for bad in [
            "20230229T000000Z",
            "21000229T000000Z",
            "20250431T000000Z",
            "20250100T000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
        // Out-of-range values format without panicking.
        let _ = format_amz_date(i128::MAX);
        let _ = format_amz_date(i128::MIN);
    }

    #[test]
    fn amz_dates_are_exactly_the_basic_form_and_odd_times_still_format() {
        for bad in [
            "+20250101T000000Z",
            "-20250101T000000Z",
            "+2025101T000000Z",
            "20250101t000000Z",
            "20250101T000000z",
            " 20250101T000000Z",
            "20250101T000000Z ",
            "2025011T0000000Z",
            "20250101T240000Z",
            "20250101T235960Z",
            "00000101T000000Z",
            "20250\u{e9}1T000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        assert_eq!(format_amz_date(-62_135_596_800), "00010101T000000Z");
        // Past the years `time` represents: the raw seconds, not a wrong date.
        assert_eq!(format_amz_date(253_402_300_800), "unix time 253402300800");
        assert_eq!(
            format_amz_date(i128::MIN),
            format!("unix time {}", i128::MIN)
        );
        let req = Client::boto3().sign();
        let err = req
            .verify_at(UNIX_EPOCH + Duration::from_secs(1 << 40))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Signature expired: 20250101T000000Z is now earlier than unix time 1099511627476 \
             (unix time 1099511627776 - 5 min.)"
        );
    }

    #[test]
    fn excerpt_truncates_on_a_char_boundary() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(200);
        let cut = excerpt(&long);
        assert!(cut.len() <= MAX_ECHO + 3 && cut.ends_with("..."));
    }

    // --- Fuzz-ish robustness -------------------------------------------------------------

    /// xorshift64*: deterministic, dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    const PIECES: &[&[u8]] = &[
        b"AWS4-HMAC-SHA256",
        b" ",
        b"\t",
        b",",
        b", ",
        b"=",
        b"==",
        b"Credential=",
        b"SignedHeaders=",
        b"Signature=",
        b"/",
        b";",
        b"aws4_request",
        b"codepipeline",
        b"20250101",
        b"20250101T000000Z",
        b"AKIDEXAMPLE",
        b"host",
        b"x-amz-date",
        b"x-amz-security-token",
        b"us-east-1",
        b"0123456789abcdef",
        b"\xc3\xa9",
        b"\xff",
        b"\x80",
        b"",
        b",,,",
        b";;",
    ];

    fn random_bytes(rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.below(16) {
            if rng.below(5) == 0 {
                out.push((rng.next() & 0xff) as u8);
            } else {
                let piece: &[u8] = PIECES[rng.below(PIECES.len())];
                out.extend_from_slice(piece);
            }
        }
        out
    }

    #[test]
    fn garbage_authorization_headers_never_panic() {
        let base = Client::boto3().sign();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut tried = 0;
        for _ in 0..5_000 {
            let mut req = base.clone();
            let Ok(auth) = HeaderValue::from_bytes(&random_bytes(&mut rng)) else {
                continue;
            };
            req.headers.insert("authorization", auth);
            match rng.below(4) {
                0 => {
                    if let Ok(date) = HeaderValue::from_bytes(&random_bytes(&mut rng)) {
                        req.headers.insert("x-amz-date", date);
                    }
                }
                1 => {
                    req.headers.remove("host");
                }
                2 => {
                    if let Ok(token) = HeaderValue::from_bytes(&random_bytes(&mut rng)) {
                        req.headers.insert("x-amz-security-token", token);
                    }
                }
                _ => {}
            }
            let now = UNIX_EPOCH + Duration::from_secs(rng.next() % (T0_SECS * 2));
            let err = req.verify_at(now).expect_err("garbage never verifies");
            assert!(err.error_type().ends_with("Exception"));
            assert!(err.to_string().len() < 2048);
            tried += 1;
        }
        assert!(tried > 1_000, "only {tried} header values were valid");
    }

    #[test]
    fn mutated_valid_authorization_headers_never_panic() {
        let base = Client::rust_sdk().sign();
        let valid = base.authorization().into_bytes();
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..3_000 {
            let mut bytes = valid.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(3) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, *rng.pick(b" ,;=/\t\x80Aa0")),
                    _ if at < bytes.len() => bytes[at] = (rng.next() & 0x7f) as u8 | 0x20,
                    _ => {}
                }
            }
            let Ok(auth) = HeaderValue::from_bytes(&bytes) else {
                continue;
            };
            let mut req = base.clone();
            req.headers.insert("authorization", auth);
            if let Err(err) = req.verify() {
                assert!(err.error_type().ends_with("Exception"));
            }
        }
    }
}
