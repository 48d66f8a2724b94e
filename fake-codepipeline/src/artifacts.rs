//! Artifacts in pipeline runs (`docs/artifacts.md`): where each action's input and output artifacts are
//! in the store, the temporary credentials a job carries for them, the AWS-owned actions that read and
//! write them (Source/S3, and any other AWS action that consumes artifacts), and AG-OUTPUT-ARTIFACT: a
//! final success on an action whose output artifact is not in the store.

use serde_json::{Value, json};
use sim_core::{NewEvent, Rule, Severity};

use crate::engine::Core;
use crate::state::{ActionDecl, ActionExecution, ArtifactRef, World};
use crate::store::Object;

/// Why the store refuses a job's artifact credentials: an S3 error code and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `InvalidAccessKeyId`, `InvalidToken`, `ExpiredToken` or `AccessDenied`.
    pub code: &'static str,
    /// What went wrong, naming the job.
    pub message: String,
}

/// The key AWS gives an artifact: the first 20 characters of the pipeline's name, the first 10 of the
/// artifact's, and 7 random characters (here from the action execution's id, so unique per execution).
pub fn artifact_key(pipeline: &str, artifact: &str, action_execution_id: &str) -> String {
    let short = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let random: String = action_execution_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(7)
        .collect();
    format!("{}/{}/{random}", short(pipeline, 20), short(artifact, 10))
}

fn artifact_json(a: &ArtifactRef) -> Value {
    json!({
        "name": a.name,
        "location": {"type": "S3", "s3Location": {"bucketName": a.bucket, "objectKey": a.key}},
    })
}

impl Core {
    /// Makes `store.bucket` the artifact bucket of `pipeline` in the store; with an encryption key, uploads
    /// to it must ask for SSE-KMS (AWS's `DenyUnEncryptedObjectUploads` policy).
    pub(crate) fn ensure_artifact_bucket(
        &self,
        pipeline: &str,
        store: &crate::state::ArtifactStoreDecl,
    ) {
        let kms = store
            .encryption_key
            .as_ref()
            .map(|k| crate::store::KmsRule {
                key_id: k.clone(),
                require_key_id: self.settings.require_kms_key_id,
            });
        self.store
            .ensure_artifact_bucket(&store.bucket, pipeline, kms);
    }

    /// AG-ARTIFACT-KMS: an upload (`operation`) to `bucket` asking for `sse` with `key_id`, signed by
    /// `access_key`, against the bucket's KMS rule. A refusal is recorded (with the job, when the key is a
    /// job's artifact key) and returned as `AccessDenied`.
    pub fn check_upload_encryption(
        &self,
        access_key: &str,
        bucket: &str,
        object: &str,
        operation: &str,
        sse: Option<&str>,
        key_id: Option<&str>,
    ) -> Result<(), Refusal> {
        let Some(rule) = self.store.kms_rule(bucket) else {
            return Ok(());
        };
        let why = if sse != Some("aws:kms") {
            format!(
                "it asks for {} instead of x-amz-server-side-encryption: aws:kms",
                sse.map_or("no encryption".to_string(), |s| format!("`{s}`"))
            )
        } else if rule.require_key_id
            && !key_id.is_some_and(|k| crate::store::key_matches(k, &rule.key_id))
        {
            format!(
                "it names the KMS key {} instead of the pipeline's {}",
                key_id.unwrap_or("(none)"),
                rule.key_id
            )
        } else {
            return Ok(());
        };
        self.with_world(|w| {
            let job = w.artifact_keys.get(access_key).and_then(|id| w.jobs.get(id));
            let at = job.map(|j| (j.execution.clone(), j.id.clone()));
            let message = format!(
                "Access Denied: {operation} of {object} to the artifact bucket {bucket}, whose pipeline has the encryptionKey {}: {why} \
                 (the bucket's DenyUnEncryptedObjectUploads policy); upload with the job's encryptionKey",
                rule.key_id
            );
            let mut e = NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ArtifactRefused)
                .rule(Rule::AgArtifactKms, Severity::Error)
                .detail(message.clone())
                .data(json!({"operation": operation, "code": "AccessDenied", "bucket": bucket, "key": object}));
            if let Some((label, id)) = &at {
                e = e.execution(label).job(id);
            }
            w.emit(e);
            Err(Refusal { code: "AccessDenied", message })
        })
    }

    /// The secret of a job's temporary artifact access key, while the job exists.
    pub fn artifact_secret(&self, access_key: &str) -> Option<String> {
        self.with_world(|w| {
            let job = w.jobs.get(w.artifact_keys.get(access_key)?)?;
            Some(job.artifact_credentials.secret.clone())
        })
    }

    /// Whether a request signed with a job's artifact key (and carrying `token`) may touch `bucket`:
    /// only the job's pipeline's artifact bucket, only with the job's session token, and only while the
    /// job can still be answered (the credentials expire with the job on the simulated clock). A refusal
    /// is recorded in the event log as `artifact_refused`.
    pub fn check_artifact_access(
        &self,
        access_key: &str,
        token: Option<&str>,
        bucket: Option<&str>,
        operation: &str,
    ) -> Result<(), Refusal> {
        self.with_world(|w| {
            let refuse = |w: &mut World, job: Option<(&str, &str)>, code: &'static str, message: String| {
                let mut e = NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ArtifactRefused)
                    .detail(format!("{operation} refused ({code}): {message}"))
                    .data(json!({"operation": operation, "code": code, "bucket": bucket}));
                if let Some((label, id)) = job {
                    e = e.execution(label).job(id);
                }
                w.emit(e);
                Err(Refusal { code, message })
            };
            let Some(job) = w.artifact_keys.get(access_key).and_then(|id| w.jobs.get(id)) else {
                return refuse(
                    w,
                    None,
                    "InvalidAccessKeyId",
                    format!("The AWS Access Key Id you provided does not exist in our records: {access_key}"),
                );
            };
            let (label, id, number) = (job.execution.clone(), job.id.clone(), job.number);
            let at = Some((label.as_str(), id.as_str()));
            if token != Some(job.artifact_credentials.session_token.as_str()) {
                let what = if token.is_none() {
                    "the request has no x-amz-security-token; temporary credentials need their session token"
                } else {
                    "the session token is not the one of this access key"
                };
                return refuse(w, at, "InvalidToken", format!("The provided token is malformed or otherwise invalid: {what}"));
            }
            if job.status.is_terminal() {
                let status = job.status;
                return refuse(
                    w,
                    at,
                    "ExpiredToken",
                    format!(
                        "The provided token has expired: these are the artifact credentials of job {number} of {label}, which is {status}; \
                         a job's credentials last only while it can be answered, so use the credentials of the job you are answering"
                    ),
                );
            }
            let own = w.executions.get(&label).and_then(|e| {
                w.pipeline_executions
                    .get(&e.pipeline_execution_id)
                    .map(|pe| pe.artifact_store.bucket.clone())
            });
            match (bucket, own) {
                (Some(b), Some(own)) if b == own => Ok(()),
                (b, own) => refuse(
                    w,
                    at,
                    "AccessDenied",
                    format!(
                        "Access Denied: the artifact credentials of job {number} of {label} reach only its pipeline's artifact bucket {}, not {}",
                        own.unwrap_or_default(),
                        b.map_or("the bucket list".to_string(), |b| format!("bucket {b}"))
                    ),
                ),
            }
        })
    }

    /// The artifacts of a job-worker or AWS action starting in run `pe_id`: its inputs are where the
    /// actions that make them wrote them; its outputs get fresh keys in the run's artifact bucket.
    pub(crate) fn assign_artifacts(
        &self,
        w: &mut World,
        pe_id: &str,
        a: &ActionDecl,
        action_execution_id: &str,
    ) -> (Vec<ArtifactRef>, Vec<ArtifactRef>, Option<String>) {
        let Some(pe) = w.pipeline_executions.get_mut(pe_id) else {
            return Default::default();
        };
        let bucket = pe.artifact_store.bucket.clone();
        let inputs = a
            .input_artifacts
            .iter()
            .map(|name| {
                pe.artifacts
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| ArtifactRef {
                        // Declared but never made (the declaration check prevents it): a key no one writes.
                        name: name.clone(),
                        bucket: bucket.clone(),
                        key: artifact_key(&pe.pipeline, name, "missing"),
                    })
            })
            .collect();
        let outputs: Vec<ArtifactRef> = a
            .output_artifacts
            .iter()
            .map(|name| ArtifactRef {
                name: name.clone(),
                bucket: bucket.clone(),
                key: artifact_key(&pe.pipeline, name, action_execution_id),
            })
            .collect();
        for o in &outputs {
            pe.artifacts.insert(o.name.clone(), o.clone());
        }
        (inputs, outputs, pe.artifact_store.encryption_key.clone())
    }

    /// The artifact members of a job's data: `inputArtifacts`, `outputArtifacts`, `artifactCredentials`
    /// and, for a pipeline with a KMS key, `encryptionKey`.
    pub(crate) fn artifact_members(
        &self,
        exec: Option<&ActionExecution>,
        job: &crate::state::Job,
        data: &mut Value,
    ) {
        let list = |v: Option<&Vec<ArtifactRef>>| -> Value {
            v.map(|v| v.iter().map(artifact_json).collect())
                .unwrap_or_default()
        };
        data["inputArtifacts"] = json!(list(exec.map(|e| &e.input_artifacts)));
        data["outputArtifacts"] = json!(list(exec.map(|e| &e.output_artifacts)));
        let c = &job.artifact_credentials;
        data["artifactCredentials"] = json!({
            "accessKeyId": c.access_key,
            "secretAccessKey": c.secret,
            "sessionToken": c.session_token,
        });
        if let Some(key) = exec.and_then(|e| e.encryption_key.as_ref()) {
            data["encryptionKey"] = json!({"id": key, "type": "KMS"});
        }
    }

    /// AG-OUTPUT-ARTIFACT: called on a final success of `label`; records a violation for each declared
    /// output artifact that is not in the store.
    pub(crate) fn check_output_artifacts(
        &self,
        w: &mut World,
        label: &str,
        job_id: &str,
        caller: Option<&str>,
    ) {
        let Some(exec) = w.executions.get(label) else {
            return;
        };
        let missing: Vec<ArtifactRef> = exec
            .output_artifacts
            .iter()
            .filter(|o| self.store.get(&o.bucket, &o.key).is_none())
            .cloned()
            .collect();
        for o in missing {
            w.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ArtifactMissing)
                    .execution(label)
                    .job(job_id)
                    .replica_opt(caller)
                    .rule(Rule::AgOutputArtifact, Severity::Error)
                    .detail(format!(
                        "{label} answered its final success but its output artifact {} is not at s3://{}/{}: \
                         upload every output artifact before answering (the next action that reads it will fail)",
                        o.name, o.bucket, o.key
                    ))
                    .data(json!({"artifact": o.name, "bucket": o.bucket, "key": o.key})),
            );
        }
    }

    /// Runs an AWS-owned action at once: Source/S3 copies `S3Bucket`/`S3ObjectKey` into its output
    /// artifacts, and fails (as AWS does) when that object is missing; any AWS action fails when one of its
    /// input artifacts is not in the store. Returns the error `(code, message)` on failure.
    pub(crate) fn run_aws_action(&self, exec: &ActionExecution) -> Result<(), (String, String)> {
        for i in &exec.input_artifacts {
            if self.store.get(&i.bucket, &i.key).is_none() {
                return Err((
                    "JobFailed".into(),
                    format!(
                        "The input artifact {} was not found at s3://{}/{}: the action that makes it did not upload it",
                        i.name, i.bucket, i.key
                    ),
                ));
            }
        }
        let is_s3_source =
            exec.action_type.category == "Source" && exec.action_type.provider == "S3";
        if is_s3_source && !exec.output_artifacts.is_empty() {
            let bucket = exec
                .configuration
                .get("S3Bucket")
                .cloned()
                .unwrap_or_default();
            let key = exec
                .configuration
                .get("S3ObjectKey")
                .cloned()
                .unwrap_or_default();
            let Some(object) = self.store.get(&bucket, &key) else {
                let why = if self.store.has_bucket(&bucket) {
                    format!("The object with key '{key}' does not exist in bucket {bucket}")
                } else {
                    format!("The bucket {bucket} does not exist")
                };
                return Err((
                    "JobFailed".into(),
                    format!("{why}: upload the source object before starting the pipeline"),
                ));
            };
            for o in &exec.output_artifacts {
                let mut copy = Object::new(object.data.clone(), self.sim.clock.now());
                copy.content_type = object.content_type.clone();
                if let Some(k) = &exec.encryption_key {
                    copy.sse = Some("aws:kms".into());
                    copy.kms_key_id = Some(k.clone());
                }
                self.store.put(&o.bucket, &o.key, copy);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_keys_are_named_as_aws_names_them() {
        assert_eq!(
            artifact_key(
                "a-very-long-pipeline-name-indeed",
                "SourceArtifact",
                "0f1e2d3c-4b5a-6978"
            ),
            "a-very-long-pipeline/SourceArti/0f1e2d3"
        );
    }
}
