//! The bundle build action (`--action bundle`): a build-type job worker that reads its input artifacts
//! from S3 and writes one zip to each output artifact, in one job.
//!
//! For each job it downloads every input artifact (a zip) with the job's own temporary credentials
//! (`artifactCredentials`, never another job's), streams each entry through SHA-256, and writes a zip of
//! every input entry (copied compressed, as it was) plus `MANIFEST.sha256`: one line `<hex sha256>  <path>`
//! per file, sorted by path. It uploads that zip to every output artifact (with `aws:kms` and the
//! pipeline's key when the job names an `encryptionKey`) and only then answers success, with the
//! externalExecutionId `bundle-<first 12 hex digits of the manifest's SHA-256>`.
//!
//! Nothing large is held in memory: downloads go to unnamed temporary files, the output zip to a named one
//! that a guard removes on every path. Bounds ([`BundleLimits`]): at most 10,000 entries and 2 GiB
//! uncompressed in all, each input at most 2 GiB; entries named with `..`, absolute paths or control
//! characters, encrypted entries and anything that is not a zip fail the job (`JobFailed`) with a message
//! that names the artifact. With one input the entries keep their paths; with several, each input's go under
//! a folder named after its artifact.
//!
//! S3 refusals (`AccessDenied`, `ExpiredToken`, `NoSuchKey`, ...) fail the job naming the artifact, its
//! bucket and key and the S3 error code. An S3 that cannot be reached (no connection, a timeout, a 5xx or
//! `SlowDown` after the SDK's own retries) is [`ActionError::Unavailable`]: the runtime answers "still
//! running" and the next continuation job, with its own fresh credentials, bundles again. The bundle is
//! deterministic (the same inputs give the same bytes), so doing it again is harmless.
//!
//! Configuration: none.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_codepipeline::types::Artifact;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_smithy_types::timeout::TimeoutConfig;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::action::{Action, ActionError, ArtifactCredentials, BoxFuture, JobContext, Step};
use crate::token::WorkRef;

/// The name of the manifest entry in the output zip.
pub const MANIFEST: &str = "MANIFEST.sha256";

const GIB: u64 = 1024 * 1024 * 1024;

/// What one job may bundle; past any bound the job fails (`JobFailed`) naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// Entries (files and folders) in all the input zips together.
    pub max_entries: usize,
    /// Uncompressed bytes of all the entries together.
    pub max_uncompressed_bytes: u64,
    /// Bytes of one input artifact as stored (the zip itself).
    pub max_artifact_bytes: u64,
}

impl Default for BundleLimits {
    /// 10,000 entries, 2 GiB uncompressed, 2 GiB per input artifact.
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_uncompressed_bytes: 2 * GIB,
            max_artifact_bytes: 2 * GIB,
        }
    }
}

/// The bundle build action. Cheap to share: one S3 client (one connection pool) for every job, each
/// request signed with the credentials of the job it serves.
#[derive(Debug, Clone)]
pub struct BundleAction {
    s3: aws_sdk_s3::Client,
    limits: BundleLimits,
    temp_dir: PathBuf,
}

/// An artifact resolved to its S3 object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ArtifactObject {
    name: String,
    bucket: String,
    key: String,
}

impl ArtifactObject {
    /// The S3 object of `artifact`, or the failure that says it has none.
    fn resolve(artifact: &Artifact, role: &str) -> Result<Self, ActionError> {
        let name = artifact.name().unwrap_or("(unnamed)").to_string();
        match artifact.location().and_then(|l| l.s3_location()) {
            Some(s3) if !s3.bucket_name().is_empty() && !s3.object_key().is_empty() => Ok(Self {
                name,
                bucket: s3.bucket_name().to_string(),
                key: s3.object_key().to_string(),
            }),
            _ => Err(ActionError::Failed(format!(
                "The {role} artifact {name} has no S3 location (bucket and key) in the job data: the bundle \
                 action reads and writes S3 artifacts only."
            ))),
        }
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// A downloaded input artifact: its object and the temporary file holding it (unnamed: the system removes it
/// when it is closed, whatever happens).
struct Downloaded {
    object: ArtifactObject,
    file: File,
}

/// What went into a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bundled {
    /// Files listed in the manifest.
    files: usize,
    /// Their uncompressed bytes.
    bytes: u64,
    /// The hex SHA-256 of the manifest's text.
    manifest_sha256: String,
}

/// The timeouts of the S3 client: any the operator configured, else a bounded connect and a bounded whole
/// operation. No read timeout: the SDK's covers the whole upload of a request body, and the SDK's stalled-stream
/// protection already ends a transfer that stops moving.
fn s3_timeouts(configured: Option<&TimeoutConfig>) -> TimeoutConfig {
    crate::aws::keep_configured(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_secs(15 * 60)),
        configured,
    )
}

/// The per-request configuration that signs with the job's credentials. The SDK gives such an override its
/// own short-lived identity cache, so nothing of one job's credentials outlives its requests.
fn with_job_credentials(credentials: &ArtifactCredentials) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().credentials_provider(Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_string()),
        None,
        "codepipeline-job",
    ))
}

/// An S3 call that failed: unavailable (try again next round) or refused (fail the job), naming the artifact,
/// its bucket and key, and the S3 error code.
fn s3_error<E>(
    doing: &str,
    object: &ArtifactObject,
    error: SdkError<E, HttpResponse>,
) -> ActionError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().map(str::to_string);
    let transient = matches!(
        error,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
    ) || status.is_some_and(|s| s >= 500)
        || code.as_deref().is_some_and(|c| {
            matches!(
                c,
                "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
            ) || c.contains("Throttl")
        });
    let what = format!("Could not {doing} ({})", object.url());
    if transient {
        return ActionError::Unavailable(format!(
            "{what}: S3 could not be reached: {}",
            DisplayErrorContext(&error)
        ));
    }
    let code = code
        .or_else(|| status.map(|s| format!("HTTP {s}")))
        .unwrap_or_else(|| "no error code".to_string());
    match error.message() {
        Some(message) if !message.is_empty() => {
            ActionError::Failed(format!("{what}: S3 error {code}: {message}"))
        }
        _ => ActionError::Failed(format!("{what}: S3 error {code}")),
    }
}

/// A local failure (a temporary file), as a job failure that says where.
fn local_error(doing: &str, dir: &Path, error: std::io::Error) -> ActionError {
    ActionError::Failed(format!(
        "The worker could not {doing} in {}: {error}",
        dir.display()
    ))
}

/// Why an entry name cannot go into the bundle, if it cannot: it must be a relative path that stays inside the
/// bundle, in plain characters.
fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.chars().any(char::is_control) {
        return Some("contains a control character");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("is an absolute path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Some("is an absolute path (a drive letter)");
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Some("escapes its folder with ..");
    }
    None
}

/// Human size in decimal units: `812 B`, `12.3 kB`, `52.4 MB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Writes the bundle of `inputs` to `output` (blocking: run it off the async threads).
fn build_bundle(
    inputs: Vec<Downloaded>,
    output: File,
    limits: BundleLimits,
) -> Result<Bundled, ActionError> {
    let fail = |message: String| ActionError::Failed(message);
    let write_error = |e: &dyn std::fmt::Display| {
        fail(format!(
            "The worker could not write the bundle to its temporary file: {e}"
        ))
    };
    let prefixed = inputs.len() > 1;
    let mut writer = ZipWriter::new(BufWriter::with_capacity(256 * 1024, output));
    let mut manifest = BTreeMap::<String, String>::new();
    let mut paths = HashSet::<String>::new();
    let mut entries = 0usize;
    let mut total = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    for input in inputs {
        let what = format!(
            "input artifact {} ({})",
            input.object.name,
            input.object.url()
        );
        let mut archive = ZipArchive::new(input.file)
            .map_err(|e| fail(format!("The {what} is not a zip archive: {e}.")))?;
        entries = entries.saturating_add(archive.len());
        if entries > limits.max_entries {
            return Err(fail(format!(
                "The {what} brings the input entries to {entries}, more than the bundle action takes ({}).",
                limits.max_entries
            )));
        }
        let declared = archive.decompressed_size().unwrap_or(0);
        if u128::from(total) + declared > u128::from(limits.max_uncompressed_bytes) {
            return Err(fail(format!(
                "The {what} declares {} uncompressed, more than the bundle action takes ({} in all).",
                human_bytes(u64::try_from(declared).unwrap_or(u64::MAX)),
                human_bytes(limits.max_uncompressed_bytes)
            )));
        }
        for index in 0..archive.len() {
            let (name, is_dir) = {
                let entry = archive
                    .by_index_raw(index)
                    .map_err(|e| fail(format!("The {what} is not a readable zip archive: {e}.")))?;
                let name = entry
                    .name()
                    .map_err(|e| fail(format!("The {what} has an unreadable entry name: {e}.")))?
                    .into_owned();
                (name, entry.is_dir())
            };
            if let Some(why) = unsafe_name(&name) {
                return Err(fail(format!(
                    "The {what} holds an entry named {name:?} that {why}: refusing to bundle it."
                )));
            }
            let path = if prefixed {
                format!("{}/{name}", input.object.name)
            } else {
                name.clone()
            };
            if path == MANIFEST {
                tracing::info!(artifact = %input.object.name, "the input has a {MANIFEST} of its own: the new manifest replaces it");
                continue;
            }
            if !paths.insert(path.clone()) {
                return Err(fail(format!(
                    "The {what} holds {path:?} twice (or another input holds it too): refusing to bundle an ambiguous archive."
                )));
            }
            if !is_dir {
                let mut entry = archive
                    .by_index(index)
                    .map_err(|e| fail(format!("Cannot read {name:?} in the {what}: {e}.")))?;
                let mut hasher = Sha256::new();
                loop {
                    let n = match entry.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(fail(format!("Cannot read {name:?} in the {what}: {e}.")));
                        }
                    };
                    total += n as u64;
                    if total > limits.max_uncompressed_bytes {
                        return Err(fail(format!(
                            "The input artifacts hold more than {} uncompressed (the limit was passed in {name:?} of the {what}).",
                            human_bytes(limits.max_uncompressed_bytes)
                        )));
                    }
                    hasher.update(&buffer[..n]);
                }
                manifest.insert(path.clone(), crate::signing::hex(&hasher.finalize()));
            }
            let raw = archive
                .by_index_raw(index)
                .map_err(|e| fail(format!("Cannot read {name:?} in the {what}: {e}.")))?;
            writer
                .raw_copy_file_rename(raw, &path)
                .map_err(|e| fail(format!("Cannot copy {name:?} from the {what}: {e}.")))?;
        }
    }
    let mut text = String::new();
    for (path, digest) in &manifest {
        let _ = writeln!(text, "{digest}  {path}");
    }
    let manifest_sha256 = crate::signing::hex(&Sha256::digest(text.as_bytes()));
    // A fixed time and mode: the same inputs give the same bundle, byte for byte.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    writer
        .start_file(MANIFEST, options)
        .map_err(|e| write_error(&e))?;
    writer
        .write_all(text.as_bytes())
        .map_err(|e| write_error(&e))?;
    let buffered = writer.finish().map_err(|e| write_error(&e))?;
    buffered
        .into_inner()
        .map_err(|e| write_error(&e.into_error()))?;
    Ok(Bundled {
        files: manifest.len(),
        bytes: total,
        manifest_sha256,
    })
}

impl BundleAction {
    /// The action, with an S3 client made from the agent's AWS configuration: its region, endpoint (the
    /// standard chain's `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`), HTTP client and retry settings, but
    /// none of its credentials: every request signs with the credentials of the job it serves.
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        let mut builder = aws_sdk_s3::config::Builder::from(sdk_config);
        builder.set_credentials_provider(None::<SharedCredentialsProvider>);
        builder.set_timeout_config(Some(s3_timeouts(sdk_config.timeout_config())));
        Self {
            s3: aws_sdk_s3::Client::from_conf(builder.build()),
            limits: BundleLimits::default(),
            temp_dir: std::env::temp_dir(),
        }
    }

    /// The same action with other bounds.
    pub fn with_limits(mut self, limits: BundleLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same action keeping its temporary files in `dir` (default: the system's, `TMPDIR`).
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = dir.into();
        self
    }

    /// Downloads one input artifact into an unnamed temporary file.
    async fn download(
        &self,
        credentials: &ArtifactCredentials,
        object: ArtifactObject,
    ) -> Result<Downloaded, ActionError> {
        let doing = format!("read input artifact {}", object.name);
        let out = self
            .s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .customize()
            .config_override(with_job_credentials(credentials))
            .send()
            .await
            .map_err(|e| s3_error(&doing, &object, e))?;
        let limit = self.limits.max_artifact_bytes;
        let too_big = |size: u64| {
            ActionError::Failed(format!(
                "Input artifact {} ({}) is {}, more than the bundle action takes ({}).",
                object.name,
                object.url(),
                human_bytes(size),
                human_bytes(limit)
            ))
        };
        if let Some(length) = out.content_length().and_then(|l| u64::try_from(l).ok())
            && length > limit
        {
            return Err(too_big(length));
        }
        let file = tempfile::tempfile_in(&self.temp_dir)
            .map_err(|e| local_error("create a temporary file", &self.temp_dir, e))?;
        let mut writer =
            tokio::io::BufWriter::with_capacity(1024 * 1024, tokio::fs::File::from_std(file));
        let mut body = out.body;
        let mut read = 0u64;
        let write_error = |e| local_error("write a downloaded artifact", &self.temp_dir, e);
        loop {
            let chunk = match body.try_next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    return Err(ActionError::Unavailable(format!(
                        "Could not {doing} ({}): the download broke off: {}",
                        object.url(),
                        DisplayErrorContext(&e)
                    )));
                }
            };
            read += chunk.len() as u64;
            if read > limit {
                return Err(too_big(read));
            }
            writer.write_all(&chunk).await.map_err(write_error)?;
        }
        writer.flush().await.map_err(write_error)?;
        let file = writer.into_inner().into_std().await;
        tracing::debug!(artifact = %object.name, bytes = read, "downloaded an input artifact");
        Ok(Downloaded { object, file })
    }

    /// Uploads the bundle at `path` to one output artifact.
    async fn upload(
        &self,
        credentials: &ArtifactCredentials,
        object: &ArtifactObject,
        path: &Path,
        kms_key_id: Option<&str>,
    ) -> Result<(), ActionError> {
        let body = ByteStream::from_path(path).await.map_err(|e| {
            ActionError::Failed(format!(
                "The worker could not read its bundle back from {}: {e}",
                path.display()
            ))
        })?;
        let mut request = self
            .s3
            .put_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .content_type("application/zip")
            .body(body);
        if let Some(key_id) = kms_key_id {
            request = request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key_id);
        }
        request
            .customize()
            .config_override(with_job_credentials(credentials))
            .send()
            .await
            .map_err(|e| s3_error(&format!("write output artifact {}", object.name), object, e))?;
        Ok(())
    }

    /// The whole job: download, bundle, upload, answer.
    async fn bundle(&self, job: &JobContext) -> Result<Step, ActionError> {
        let artifacts = &job.artifacts;
        let credentials = artifacts.credentials.as_ref().ok_or_else(|| {
            ActionError::Failed(
                "The job carries no artifactCredentials: the bundle action needs the job's temporary \
                 credentials to read and write its artifacts."
                    .to_string(),
            )
        })?;
        if artifacts.input_artifacts.is_empty() {
            return Err(ActionError::Failed(
                "The job names no input artifacts: give the action at least one input artifact (a zip) to bundle."
                    .to_string(),
            ));
        }
        if artifacts.output_artifacts.is_empty() {
            return Err(ActionError::Failed(
                "The job names no output artifacts: give the action an output artifact to write the bundle to."
                    .to_string(),
            ));
        }
        let inputs = artifacts
            .input_artifacts
            .iter()
            .map(|a| ArtifactObject::resolve(a, "input"))
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = artifacts
            .output_artifacts
            .iter()
            .map(|a| ArtifactObject::resolve(a, "output"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut downloaded = Vec::with_capacity(inputs.len());
        for object in inputs {
            downloaded.push(self.download(credentials, object).await?);
        }
        // A named file (the upload reads it by path), removed when this guard drops, on every path.
        let output = tempfile::Builder::new()
            .prefix("agent-bundle-")
            .suffix(".zip")
            .tempfile_in(&self.temp_dir)
            .map_err(|e| local_error("create a temporary file", &self.temp_dir, e))?;
        let handle = output
            .as_file()
            .try_clone()
            .map_err(|e| local_error("open a temporary file", &self.temp_dir, e))?;
        let limits = self.limits;
        let bundled = tokio::task::spawn_blocking(move || build_bundle(downloaded, handle, limits))
            .await
            .map_err(|e| ActionError::Failed(format!("The bundle could not be made: {e}")))??;
        let kms_key_id = artifacts.kms_key_id();
        for object in &outputs {
            self.upload(credentials, object, output.path(), kms_key_id)
                .await?;
        }
        let size = std::fs::metadata(output.path()).map_or(0, |m| m.len());
        let external_execution_id = format!("bundle-{}", &bundled.manifest_sha256[..12]);
        tracing::info!(
            job_id = %job.job_id,
            files = bundled.files,
            bytes = bundled.bytes,
            zip_bytes = size,
            outputs = outputs.len(),
            kms = kms_key_id.is_some(),
            manifest_sha256 = %bundled.manifest_sha256,
            "bundled"
        );
        Ok(Step::Succeeded {
            external_execution_id,
            summary: format!(
                "Bundled {} file{} ({}), manifest sha256 {}",
                bundled.files,
                if bundled.files == 1 { "" } else { "s" },
                human_bytes(bundled.bytes),
                bundled.manifest_sha256
            ),
        })
    }
}

impl Action for BundleAction {
    fn name(&self) -> &'static str {
        "bundle"
    }

    fn start<'a>(
        &'a self,
        job: &'a JobContext,
        _idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Step, ActionError>> {
        Box::pin(self.bundle(job))
    }

    /// The bundle never answers "still running", so no token of its own names started work; should one
    /// come, bundling again is the same work (the output is the same bytes).
    fn check<'a>(
        &'a self,
        job: &'a JobContext,
        _work: &'a WorkRef,
    ) -> BoxFuture<'a, Result<Step, ActionError>> {
        Box::pin(self.bundle(job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};

    fn zip_of(entries: &[(&str, &[u8])]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        {
            let mut w = ZipWriter::new(&mut file);
            for (name, data) in entries {
                if name.ends_with('/') {
                    w.add_directory(*name, SimpleFileOptions::default())
                        .unwrap();
                } else {
                    w.start_file(*name, SimpleFileOptions::default()).unwrap();
                    w.write_all(data).unwrap();
                }
            }
            w.finish().unwrap();
        }
        file.seek(SeekFrom::Start(0)).unwrap();
        file
    }

    fn input(name: &str, file: File) -> Downloaded {
        Downloaded {
            object: ArtifactObject {
                name: name.into(),
                bucket: "b".into(),
                key: format!("p/{name}/k"),
            },
            file,
        }
    }

    fn read_all(mut file: File) -> BTreeMap<String, Vec<u8>> {
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut archive = ZipArchive::new(file).unwrap();
        let mut out = BTreeMap::new();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(entry.name().unwrap().into_owned(), data);
        }
        out
    }

    fn sha(data: &[u8]) -> String {
        crate::signing::hex(&Sha256::digest(data))
    }

    #[test]
    fn the_bundle_copies_every_entry_and_lists_the_files_sorted() {
        let source = zip_of(&[
            ("src/", b""),
            ("src/main.rs", b"fn main() {}\n"),
            ("README.md", b"# hi\n"),
            ("b/a.txt", b"a"),
        ]);
        let out = tempfile::tempfile().unwrap();
        let bundled = build_bundle(
            vec![input("SourceArtifact", source)],
            out.try_clone().unwrap(),
            BundleLimits::default(),
        )
        .unwrap();
        let files = read_all(out);
        let manifest = format!(
            "{}  README.md\n{}  b/a.txt\n{}  src/main.rs\n",
            sha(b"# hi\n"),
            sha(b"a"),
            sha(b"fn main() {}\n")
        );
        assert_eq!(
            String::from_utf8(files[MANIFEST].clone()).unwrap(),
            manifest
        );
        assert_eq!(files["src/main.rs"], b"fn main() {}\n");
        assert!(files.contains_key("src/"));
        assert_eq!(bundled.files, 3);
        assert_eq!(bundled.bytes, 5 + 1 + 13);
        assert_eq!(bundled.manifest_sha256, sha(manifest.as_bytes()));
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let make = || {
            let out = tempfile::tempfile().unwrap();
            build_bundle(
                vec![input("S", zip_of(&[("x", b"1"), ("y", b"2")]))],
                out.try_clone().unwrap(),
                BundleLimits::default(),
            )
            .unwrap();
            let mut bytes = Vec::new();
            let mut out = out;
            out.seek(SeekFrom::Start(0)).unwrap();
            out.read_to_end(&mut bytes).unwrap();
            bytes
        };
        assert_eq!(make(), make());
    }

    #[test]
    fn several_inputs_go_under_their_artifact_names() {
        let out = tempfile::tempfile().unwrap();
        build_bundle(
            vec![
                input("One", zip_of(&[("same.txt", b"1")])),
                input("Two", zip_of(&[("same.txt", b"2")])),
            ],
            out.try_clone().unwrap(),
            BundleLimits::default(),
        )
        .unwrap();
        let files = read_all(out);
        assert_eq!(files["One/same.txt"], b"1");
        assert_eq!(files["Two/same.txt"], b"2");
    }

    fn failure(inputs: Vec<Downloaded>, limits: BundleLimits) -> String {
        match build_bundle(inputs, tempfile::tempfile().unwrap(), limits) {
            Err(ActionError::Failed(message)) => message,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn bad_inputs_fail_naming_the_artifact() {
        let mut not_zip = tempfile::tempfile().unwrap();
        not_zip.write_all(b"PK-but-not-really").unwrap();
        not_zip.seek(SeekFrom::Start(0)).unwrap();
        let m = failure(
            vec![input("SourceArtifact", not_zip)],
            BundleLimits::default(),
        );
        assert!(
            m.contains("input artifact SourceArtifact (s3://b/p/SourceArtifact/k) is not a zip"),
            "{m}"
        );
        for name in ["../etc/passwd", "a/../../b", "/abs", "C:/x", "a\\..\\..\\b"] {
            let m = failure(
                vec![input("S", zip_of(&[(name, b"x")]))],
                BundleLimits::default(),
            );
            assert!(m.contains("refusing to bundle"), "{name}: {m}");
            assert!(m.contains("input artifact S"), "{name}: {m}");
        }
        let m = failure(
            vec![input("S", zip_of(&[("a", b"1"), ("b", b"2"), ("c", b"3")]))],
            BundleLimits {
                max_entries: 2,
                ..BundleLimits::default()
            },
        );
        assert!(m.contains("more than the bundle action takes (2)"), "{m}");
        let m = failure(
            vec![input(
                "S",
                zip_of(&[("a", &[7u8; 600]), ("b", &[7u8; 600])]),
            )],
            BundleLimits {
                max_uncompressed_bytes: 1000,
                ..BundleLimits::default()
            },
        );
        assert!(m.contains("1.0 kB"), "{m}");
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(unsafe_name("a/b/c.txt"), None);
        assert_eq!(unsafe_name("a/..b/c"), None);
        assert!(unsafe_name("..").is_some());
        assert!(unsafe_name("a/\nb").is_some());
        assert!(unsafe_name("").is_some());
        assert!(unsafe_name("\\\\server\\share").is_some());
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(12_345), "12.3 kB");
        assert_eq!(human_bytes(52_428_800), "52.4 MB");
        assert_eq!(human_bytes(999_999), "1.0 MB");
        assert_eq!(human_bytes(2 * GIB), "2.1 GB");
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let c = ArtifactCredentials::new("ASIAEXAMPLE", "the-secret", "the-token");
        let job = JobContext {
            artifacts: crate::action::JobArtifacts {
                credentials: Some(c),
                ..Default::default()
            },
            ..Default::default()
        };
        let shown = format!("{job:?}");
        for secret in ["ASIAEXAMPLE", "the-secret", "the-token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
