//! The artifact store: an in-memory, S3-compatible object store served on the fake's own address
//! (`docs/artifacts.md`). The S3 protocol (REST paths, XML, SigV4 in its header, presigned and chunked
//! forms) is the `s3s` crate's; this module is the backend behind it: buckets, objects, multipart uploads,
//! checksums (header and trailing), and the rules of an artifact bucket (KMS). Who may do what (the
//! worker's long-term keys, and a job's temporary artifact credentials, which expire with the job on the
//! simulated clock) is [`crate::s3`]'s.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use sim_core::{Sim, SimTime};

/// What an artifact bucket requires of an upload (the `DenyUnEncryptedObjectUploads` bucket policy AWS
/// documents for artifact buckets of a pipeline with an `encryptionKey`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsRule {
    /// The pipeline's key (`encryptionKey.id`).
    pub key_id: String,
    /// Also refuse an upload that names another key (inferred; off by default).
    pub require_key_id: bool,
}

/// One bucket.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    /// When it was created.
    pub created: Option<SimTime>,
    /// Objects by key.
    pub objects: BTreeMap<String, Object>,
    /// The pipelines whose artifact bucket it is.
    pub pipelines: Vec<String>,
    /// The encryption its uploads need, when a pipeline using it has an `encryptionKey` (checked on an
    /// upload's headers by [`crate::Core::check_upload_encryption`], before its body is read).
    pub kms: Option<KmsRule>,
}

/// One object.
#[derive(Clone, Debug)]
pub struct Object {
    /// Its bytes.
    pub data: Bytes,
    /// Hex MD5 (or `md5-of-md5s-N` for a multipart upload).
    pub etag: String,
    /// When it was written (simulated clock).
    pub modified: SimTime,
    /// `Content-Type` as sent.
    pub content_type: Option<String>,
    /// User metadata.
    pub metadata: Option<Metadata>,
    /// The checksums sent with it (and verified).
    pub checksum: Checksum,
    /// `aws:kms` or `AES256`, as the upload asked.
    pub sse: Option<String>,
    /// The KMS key id the upload named.
    pub kms_key_id: Option<String>,
}

impl Object {
    /// An object of `data`, written at `now`, unencrypted.
    pub fn new(data: Bytes, now: SimTime) -> Self {
        Object {
            etag: hex(&Md5::digest(&data)),
            data,
            modified: now,
            content_type: None,
            metadata: None,
            checksum: Checksum::default(),
            sse: None,
            kms_key_id: None,
        }
    }
}

struct Upload {
    bucket: String,
    key: String,
    content_type: Option<String>,
    metadata: Option<Metadata>,
    sse: Option<String>,
    kms_key_id: Option<String>,
    parts: BTreeMap<i32, (Bytes, String)>,
}

#[derive(Default)]
struct Inner {
    buckets: BTreeMap<String, Bucket>,
    uploads: HashMap<String, Upload>,
    next_upload: u64,
}

/// The store: cheap to share, its own lock (never taken while the world's is wanted).
pub struct Store {
    sim: Sim,
    inner: Mutex<Inner>,
}

/// Why a bucket name is refused: S3's rules (3 to 63 characters of lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit).
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if (3..=63).contains(&name.len())
        && ok_chars
        && ends(name.bytes().next())
        && ends(name.bytes().last())
    {
        Ok(())
    } else {
        Err(format!(
            "bucket name '{name}' is not valid: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// An empty store on `sim`'s clock.
    pub fn new(sim: Sim) -> Self {
        Store {
            sim,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `name` the artifact bucket of `pipeline` (creating it if needed), with `kms` as its rule for
    /// uploads when the pipeline has an encryption key.
    pub fn ensure_artifact_bucket(&self, name: &str, pipeline: &str, kms: Option<KmsRule>) {
        let now = self.sim.clock.now();
        let mut inner = self.lock();
        let b = inner.buckets.entry(name.to_string()).or_default();
        b.created.get_or_insert(now);
        if !b.pipelines.iter().any(|p| p == pipeline) {
            b.pipelines.push(pipeline.to_string());
        }
        if kms.is_some() {
            b.kms = kms;
        }
    }

    /// Creates `name` if it does not exist; true if it was created.
    pub fn create_bucket(&self, name: &str) -> bool {
        let now = self.sim.clock.now();
        let mut inner = self.lock();
        if inner.buckets.contains_key(name) {
            return false;
        }
        inner.buckets.insert(
            name.to_string(),
            Bucket {
                created: Some(now),
                ..Bucket::default()
            },
        );
        true
    }

    /// Whether `bucket` exists.
    pub fn has_bucket(&self, bucket: &str) -> bool {
        self.lock().buckets.contains_key(bucket)
    }

    /// The object at `bucket`/`key`, if any (a cheap clone: the bytes are shared).
    pub fn get(&self, bucket: &str, key: &str) -> Option<Object> {
        self.lock().buckets.get(bucket)?.objects.get(key).cloned()
    }

    /// Writes `object` at `bucket`/`key` (the bucket is created if missing).
    pub fn put(&self, bucket: &str, key: &str, object: Object) {
        let now = self.sim.clock.now();
        let mut inner = self.lock();
        let b = inner.buckets.entry(bucket.to_string()).or_default();
        b.created.get_or_insert(now);
        b.objects.insert(key.to_string(), object);
    }

    /// The KMS rule of `bucket`, if its pipeline has an encryption key.
    pub fn kms_rule(&self, bucket: &str) -> Option<KmsRule> {
        self.lock().buckets.get(bucket)?.kms.clone()
    }

    /// Number of objects and bytes held (the console and the benchmarks).
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        inner
            .buckets
            .values()
            .flat_map(|b| b.objects.values())
            .fold((0, 0), |(n, bytes), o| (n + 1, bytes + o.data.len()))
    }
}

/// A key id, alias or ARN names `want` if it is `want` or ends with `/want` (a key ARN's resource part).
pub fn key_matches(given: &str, want: &str) -> bool {
    given == want || given.ends_with(&format!("/{want}")) || want.ends_with(&format!("/{given}"))
}

fn no_such_bucket(bucket: &str) -> s3s::S3Error {
    s3_error!(
        NoSuchBucket,
        "The specified bucket does not exist: {bucket}"
    )
}

fn no_such_key(key: &str) -> s3s::S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist: {key}")
}

/// The `x-amz-checksum-*` members of an S3 input (PutObject, UploadPart), as a [`Checksum`].
macro_rules! checksums {
    ($x:expr) => {
        Checksum {
            checksum_crc32: $x.checksum_crc32.clone(),
            checksum_crc32c: $x.checksum_crc32c.clone(),
            checksum_sha1: $x.checksum_sha1.clone(),
            checksum_sha256: $x.checksum_sha256.clone(),
            checksum_crc64nvme: $x.checksum_crc64nvme.clone(),
            ..Default::default()
        }
    };
}

/// The checksums an upload announces (headers, `x-amz-sdk-checksum-algorithm`, or `x-amz-trailer`), to
/// compute while the body arrives.
fn hasher_for(
    announced: &Checksum,
    algorithm: Option<&ChecksumAlgorithm>,
    headers: &http::HeaderMap,
) -> S3Result<s3s::checksum::ChecksumHasher> {
    let mut h = s3s::checksum::ChecksumHasher::default();
    let mut want = |name: &str| -> S3Result<()> {
        match name
            .to_ascii_lowercase()
            .trim_start_matches("x-amz-checksum-")
        {
            "crc32" => h.crc32 = Some(Default::default()),
            "crc32c" => h.crc32c = Some(Default::default()),
            "sha1" => h.sha1 = Some(Default::default()),
            "sha256" => h.sha256 = Some(Default::default()),
            "crc64nvme" => h.crc64nvme = Some(Default::default()),
            other => {
                return Err(s3_error!(
                    InvalidRequest,
                    "Unsupported checksum algorithm: {other}"
                ));
            }
        }
        Ok(())
    };
    for (name, given) in [
        ("crc32", &announced.checksum_crc32),
        ("crc32c", &announced.checksum_crc32c),
        ("sha1", &announced.checksum_sha1),
        ("sha256", &announced.checksum_sha256),
        ("crc64nvme", &announced.checksum_crc64nvme),
    ] {
        if given.is_some() {
            want(name)?;
        }
    }
    if let Some(a) = algorithm {
        want(a.as_str())?;
    }
    if let Some(trailer) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        for name in trailer
            .split(',')
            .map(str::trim)
            .filter(|n| n.starts_with("x-amz-checksum-"))
        {
            want(name)?;
        }
    }
    Ok(h)
}

/// The checksums sent in headers, completed by the trailing ones (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`,
/// which boto3, the AWS CLI and the Rust SDK send by default), compared with what the body hashed to.
fn verify_checksums(
    mut announced: Checksum,
    computed: Checksum,
    trailers: Option<s3s::TrailingHeaders>,
) -> S3Result<Checksum> {
    if let Some(trailers) = trailers.and_then(|t| t.take()) {
        for (name, slot) in [
            ("x-amz-checksum-crc32", &mut announced.checksum_crc32),
            ("x-amz-checksum-crc32c", &mut announced.checksum_crc32c),
            ("x-amz-checksum-sha1", &mut announced.checksum_sha1),
            ("x-amz-checksum-sha256", &mut announced.checksum_sha256),
            (
                "x-amz-checksum-crc64nvme",
                &mut announced.checksum_crc64nvme,
            ),
        ] {
            if let Some(v) = trailers.get(name) {
                *slot = Some(
                    v.to_str()
                        .map_err(|_| s3_error!(InvalidArgument, "{name} is not text"))?
                        .to_string(),
                );
            }
        }
    }
    for (name, given, got) in [
        ("CRC32", &announced.checksum_crc32, &computed.checksum_crc32),
        (
            "CRC32C",
            &announced.checksum_crc32c,
            &computed.checksum_crc32c,
        ),
        ("SHA1", &announced.checksum_sha1, &computed.checksum_sha1),
        (
            "SHA256",
            &announced.checksum_sha256,
            &computed.checksum_sha256,
        ),
        (
            "CRC64NVME",
            &announced.checksum_crc64nvme,
            &computed.checksum_crc64nvme,
        ),
    ] {
        match (given, got) {
            (Some(g), Some(c)) if g != c => {
                return Err(s3_error!(
                    BadDigest,
                    "The {name} you specified did not match the calculated checksum: sent {g}, the body hashes to {c}"
                ));
            }
            (None, Some(_)) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "x-amz-checksum-{} was announced but never sent (neither as a header nor as a trailer)",
                    name.to_ascii_lowercase()
                ));
            }
            _ => {}
        }
    }
    Ok(computed)
}

/// Reads a request body whole, hashing it as it comes.
async fn read_body(
    body: Option<StreamingBlob>,
    mut hasher: Option<&mut s3s::checksum::ChecksumHasher>,
) -> S3Result<(Bytes, [u8; 16])> {
    let Some(mut body) = body else {
        return Ok((Bytes::new(), Md5::digest(b"").into()));
    };
    let mut buf = BytesMut::new();
    let mut md5 = Md5::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| s3_error!(IncompleteBody, "the request body ended early: {e}"))?
    {
        md5.update(&chunk);
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&chunk);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf.freeze(), md5.finalize().into()))
}

fn check_md5(content_md5: Option<&str>, md5: &[u8; 16]) -> S3Result<()> {
    let Some(given) = content_md5 else {
        return Ok(());
    };
    let decoded = base64_simd::STANDARD
        .decode_to_vec(given)
        .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not base64: {given}"))?;
    if decoded != md5 {
        return Err(s3_error!(
            BadDigest,
            "The Content-MD5 you specified did not match what we received"
        ));
    }
    Ok(())
}

fn timestamp(t: SimTime) -> Timestamp {
    Timestamp::from(t.to_system_time())
}

fn object_summary(key: &str, o: &Object) -> s3s::dto::Object {
    s3s::dto::Object {
        key: Some(key.to_string()),
        size: Some(o.data.len() as i64),
        e_tag: Some(ETag::Strong(o.etag.clone())),
        last_modified: Some(timestamp(o.modified)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        ..Default::default()
    }
}

/// The S3 operations, over a shared [`Store`].
pub struct StoreS3 {
    store: std::sync::Arc<Store>,
}

impl StoreS3 {
    /// The S3 face of `store`.
    pub fn new(store: std::sync::Arc<Store>) -> Self {
        StoreS3 { store }
    }
}

#[async_trait::async_trait]
impl S3 for StoreS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let inner = self.store.lock();
        let buckets = inner
            .buckets
            .iter()
            .map(|(name, b)| s3s::dto::Bucket {
                name: Some(name.clone()),
                creation_date: b.created.map(timestamp),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = req.input.bucket;
        check_bucket_name(&name).map_err(|m| s3_error!(InvalidBucketName, "{m}"))?;
        if !self.store.create_bucket(&name) {
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it: {name}"
            ));
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        if !self.store.has_bucket(&req.input.bucket) {
            return Err(no_such_bucket(&req.input.bucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        if !self.store.has_bucket(&req.input.bucket) {
            return Err(no_such_bucket(&req.input.bucket));
        }
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let name = req.input.bucket;
        let mut inner = self.store.lock();
        match inner.buckets.get(&name) {
            None => return Err(no_such_bucket(&name)),
            Some(b) if !b.objects.is_empty() => {
                return Err(s3_error!(
                    BucketNotEmpty,
                    "The bucket you tried to delete is not empty: {name}"
                ));
            }
            Some(b) if !b.pipelines.is_empty() => {
                return Err(s3_error!(
                    AccessDenied,
                    "{name} is the artifact bucket of pipeline {}; delete the pipeline first",
                    b.pipelines.join(", ")
                ));
            }
            Some(_) => {}
        }
        inner.buckets.remove(&name);
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        let sse = input
            .server_side_encryption
            .as_ref()
            .map(|s| s.as_str().to_string());
        let announced = checksums!(input);
        let mut hasher = hasher_for(&announced, input.checksum_algorithm.as_ref(), &req.headers)?;
        let (data, md5) = read_body(input.body, Some(&mut hasher)).await?;
        check_md5(input.content_md5.as_deref(), &md5)?;
        let checksum = verify_checksums(announced, hasher.finalize(), req.trailing_headers)?;
        let object = Object {
            etag: hex(&md5),
            data,
            modified: self.store.sim.clock.now(),
            content_type: input.content_type.map(|c| c.to_string()),
            metadata: input.metadata,
            checksum: checksum.clone(),
            sse: sse.clone(),
            kms_key_id: input.ssekms_key_id.clone(),
        };
        let etag = object.etag.clone();
        {
            let mut inner = self.store.lock();
            let Some(b) = inner.buckets.get_mut(&input.bucket) else {
                return Err(no_such_bucket(&input.bucket));
            };
            b.objects.insert(input.key, object);
        }
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            server_side_encryption: sse.map(ServerSideEncryption::from),
            ssekms_key_id: input.ssekms_key_id,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let object = {
            let inner = self.store.lock();
            let b = inner
                .buckets
                .get(&input.bucket)
                .ok_or_else(|| no_such_bucket(&input.bucket))?;
            b.objects
                .get(&input.key)
                .cloned()
                .ok_or_else(|| no_such_key(&input.key))?
        };
        let size = object.data.len() as u64;
        let (data, content_range, whole) = match input.range {
            None => (object.data.clone(), None, true),
            Some(range) => {
                let r = range.check(size).map_err(|_| {
                    s3_error!(InvalidRange, "The requested range is not satisfiable")
                })?;
                (
                    object.data.slice(r.start as usize..r.end as usize),
                    Some(format!(
                        "bytes {}-{}/{size}",
                        r.start,
                        r.end.saturating_sub(1)
                    )),
                    r.start == 0 && r.end == size,
                )
            }
        };
        let checksum = if whole {
            object.checksum.clone()
        } else {
            Checksum::default()
        };
        Ok(S3Response::new(GetObjectOutput {
            content_length: Some(data.len() as i64),
            body: Some(StreamingBlob::from(s3s::Body::from(data))),
            content_range,
            accept_ranges: Some("bytes".into()),
            last_modified: Some(timestamp(object.modified)),
            e_tag: Some(ETag::Strong(object.etag.clone())),
            content_type: object.content_type.as_deref().and_then(|c| c.parse().ok()),
            metadata: object.metadata.clone(),
            server_side_encryption: object.sse.clone().map(ServerSideEncryption::from),
            ssekms_key_id: object.kms_key_id.clone(),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let object = self.store.get(&input.bucket, &input.key).ok_or_else(|| {
            if self.store.has_bucket(&input.bucket) {
                no_such_key(&input.key)
            } else {
                no_such_bucket(&input.bucket)
            }
        })?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(object.data.len() as i64),
            accept_ranges: Some("bytes".into()),
            last_modified: Some(timestamp(object.modified)),
            e_tag: Some(ETag::Strong(object.etag.clone())),
            content_type: object.content_type.as_deref().and_then(|c| c.parse().ok()),
            metadata: object.metadata.clone(),
            server_side_encryption: object.sse.clone().map(ServerSideEncryption::from),
            ssekms_key_id: object.kms_key_id.clone(),
            checksum_crc32: object.checksum.checksum_crc32.clone(),
            checksum_crc32c: object.checksum.checksum_crc32c.clone(),
            checksum_sha1: object.checksum.checksum_sha1.clone(),
            checksum_sha256: object.checksum.checksum_sha256.clone(),
            checksum_crc64nvme: object.checksum.checksum_crc64nvme.clone(),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let mut inner = self.store.lock();
        let b = inner
            .buckets
            .get_mut(&input.bucket)
            .ok_or_else(|| no_such_bucket(&input.bucket))?;
        // S3 answers 204 whether or not the key existed.
        b.objects.remove(&input.key);
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let mut inner = self.store.lock();
        let b = inner
            .buckets
            .get_mut(&input.bucket)
            .ok_or_else(|| no_such_bucket(&input.bucket))?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        for o in input.delete.objects {
            b.objects.remove(&o.key);
            if !quiet {
                deleted.push(DeletedObject {
                    key: Some(o.key),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket { bucket, key, .. } = &input.copy_source else {
            return Err(s3_error!(
                NotImplemented,
                "copying from an access point is not supported"
            ));
        };
        let sse = input
            .server_side_encryption
            .as_ref()
            .map(|s| s.as_str().to_string());
        let mut object = self
            .store
            .get(bucket, key)
            .ok_or_else(|| no_such_key(key))?;
        object.modified = self.store.sim.clock.now();
        object.sse = sse;
        object.kms_key_id = input.ssekms_key_id;
        let (etag, modified) = (object.etag.clone(), object.modified);
        {
            let mut inner = self.store.lock();
            let b = inner
                .buckets
                .get_mut(&input.bucket)
                .ok_or_else(|| no_such_bucket(&input.bucket))?;
            b.objects.insert(input.key, object);
        }
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(etag)),
                last_modified: Some(timestamp(modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let inner = self.store.lock();
        let b = inner
            .buckets
            .get(&input.bucket)
            .ok_or_else(|| no_such_bucket(&input.bucket))?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let after = match (&input.continuation_token, &input.start_after) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(s)) => Some(s.clone()),
            (None, None) => None,
        };
        let mut contents = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut last = None;
        let mut truncated = false;
        let range = b.objects.range::<String, _>((
            after
                .as_ref()
                .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
            std::ops::Bound::Unbounded,
        ));
        for (key, o) in range.filter(|(k, _)| k.starts_with(&prefix)) {
            let rolled = input
                .delimiter
                .as_deref()
                .filter(|d| !d.is_empty())
                .and_then(|d| {
                    key[prefix.len()..]
                        .find(d)
                        .map(|i| key[..prefix.len() + i + d.len()].to_string())
                });
            if let Some(p) = &rolled
                && prefixes.last() == Some(p)
            {
                last = Some(key.clone());
                continue;
            }
            if contents.len() + prefixes.len() >= max_keys {
                truncated = true;
                break;
            }
            match rolled {
                Some(p) => prefixes.push(p),
                None => contents.push(object_summary(key, o)),
            }
            last = Some(key.clone());
        }
        let count = contents.len() + prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(max_keys as i32),
            key_count: Some(count as i32),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: if truncated { last } else { None },
            start_after: input.start_after,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!prefixes.is_empty()).then(|| {
                prefixes
                    .into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect()
            }),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        let sse = input
            .server_side_encryption
            .as_ref()
            .map(|s| s.as_str().to_string());
        if !self.store.has_bucket(&input.bucket) {
            return Err(no_such_bucket(&input.bucket));
        }
        let mut inner = self.store.lock();
        inner.next_upload += 1;
        let id = format!(
            "upload-{:08}-{}",
            inner.next_upload,
            uuid::Uuid::new_v4().simple()
        );
        inner.uploads.insert(
            id.clone(),
            Upload {
                bucket: input.bucket.clone(),
                key: input.key.clone(),
                content_type: input.content_type.map(|c| c.to_string()),
                metadata: input.metadata,
                sse: sse.clone(),
                kms_key_id: input.ssekms_key_id.clone(),
                parts: BTreeMap::new(),
            },
        );
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            server_side_encryption: sse.map(ServerSideEncryption::from),
            ssekms_key_id: input.ssekms_key_id,
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        if !(1..=10_000).contains(&input.part_number) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        {
            let inner = self.store.lock();
            match inner.uploads.get(&input.upload_id) {
                Some(u) if u.bucket == input.bucket && u.key == input.key => {}
                _ => return Err(no_such_upload(&input.upload_id)),
            }
        }
        let announced = checksums!(input);
        let mut hasher = hasher_for(&announced, input.checksum_algorithm.as_ref(), &req.headers)?;
        let (data, md5) = read_body(input.body, Some(&mut hasher)).await?;
        check_md5(input.content_md5.as_deref(), &md5)?;
        let checksum = verify_checksums(announced, hasher.finalize(), req.trailing_headers)?;
        let etag = hex(&md5);
        let mut inner = self.store.lock();
        let u = inner
            .uploads
            .get_mut(&input.upload_id)
            .ok_or_else(|| no_such_upload(&input.upload_id))?;
        u.parts.insert(input.part_number, (data, etag.clone()));
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            server_side_encryption: u.sse.clone().map(ServerSideEncryption::from),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let parts = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        if parts.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "You must specify at least one part"
            ));
        }
        let now = self.store.sim.clock.now();
        let mut inner = self.store.lock();
        let upload = match inner.uploads.get(&input.upload_id) {
            Some(u) if u.bucket == input.bucket && u.key == input.key => u,
            _ => return Err(no_such_upload(&input.upload_id)),
        };
        let mut data = BytesMut::new();
        let mut md5s = Vec::new();
        let mut previous = 0;
        for (i, part) in parts.iter().enumerate() {
            let n = part.part_number.unwrap_or_default();
            if n <= previous {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order"
                ));
            }
            previous = n;
            let (bytes, etag) = upload
                .parts
                .get(&n)
                .ok_or_else(|| s3_error!(InvalidPart, "Part {n} was never uploaded"))?;
            if let Some(given) = &part.e_tag
                && given.as_strong() != Some(etag.as_str())
            {
                return Err(s3_error!(
                    InvalidPart,
                    "Part {n}'s ETag {given:?} is not the one uploaded ({etag})"
                ));
            }
            if i + 1 < parts.len() && bytes.len() < 5 * 1024 * 1024 {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Part {n} is {} bytes; every part but the last must be at least 5 MiB",
                    bytes.len()
                ));
            }
            md5s.extend_from_slice(&Md5::digest(bytes));
            data.extend_from_slice(bytes);
        }
        let etag = format!("{}-{}", hex(&Md5::digest(&md5s)), parts.len());
        let upload = inner
            .uploads
            .remove(&input.upload_id)
            .expect("looked up above");
        let object = Object {
            data: data.freeze(),
            etag: etag.clone(),
            modified: now,
            content_type: upload.content_type,
            metadata: upload.metadata,
            checksum: Checksum::default(),
            sse: upload.sse.clone(),
            kms_key_id: upload.kms_key_id.clone(),
        };
        let b = inner
            .buckets
            .get_mut(&input.bucket)
            .ok_or_else(|| no_such_bucket(&input.bucket))?;
        b.objects.insert(input.key.clone(), object);
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(ETag::Strong(etag)),
            server_side_encryption: upload.sse.map(ServerSideEncryption::from),
            ssekms_key_id: upload.kms_key_id,
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let mut inner = self.store.lock();
        if inner.uploads.remove(&input.upload_id).is_none() {
            return Err(no_such_upload(&input.upload_id));
        }
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }
}

fn no_such_upload(id: &str) -> s3s::S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified multipart upload does not exist: {id}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3s_rules() {
        assert!(check_bucket_name("sim-artifacts").is_ok());
        assert!(check_bucket_name("ab").is_err());
        assert!(check_bucket_name("Upper").is_err());
        assert!(check_bucket_name("-dash").is_err());
    }

    #[test]
    fn content_md5_is_checked() {
        // MD5 of "" is d41d8cd98f00b204e9800998ecf8427e: 1B2M2Y8AsgTpgAmY7PhCfg==.
        let empty: [u8; 16] = Md5::digest(b"").into();
        assert!(check_md5(Some("1B2M2Y8AsgTpgAmY7PhCfg=="), &empty).is_ok());
        assert!(check_md5(Some("AAAAAAAAAAAAAAAAAAAAAA=="), &empty).is_err());
        assert!(check_md5(Some("!!"), &empty).is_err());
        assert!(check_md5(None, &empty).is_ok());
    }

    #[test]
    fn kms_keys_match_by_id_or_arn() {
        assert!(key_matches("arn:aws:kms:us-east-1:1:key/abc", "abc"));
        assert!(key_matches("abc", "arn:aws:kms:us-east-1:1:key/abc"));
        assert!(!key_matches("abd", "abc"));
    }
}
