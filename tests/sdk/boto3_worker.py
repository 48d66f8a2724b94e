"""A small, correct custom-action job worker written with boto3, as an agent author outside this project
would write it: the cheapest stand-in for our users (run by tests/tests/boto3_worker.rs).

It knows only the harness contract (docs/design.md): the endpoint, keys and region come from the
environment (boto3 reads AWS_DEFAULT_REGION and AWS_ENDPOINT_URL_CODEPIPELINE itself), the action type from
JOB_ACTION_TYPE, the poll interval from JOB_POLL_INTERVAL_MS. Its "work" takes `Rounds` continuation rounds
(an action configuration property, default 3): the first job is answered at once with a continuation token
and an externalExecutionId, each follow-up job with progress, the last with 100 and no token. It keeps
boto3's default retries, so a throttled call sleeps in botocore's backoff, as it would in production. On
SIGTERM it stops polling, answers the job it holds and exits.

A job with artifacts (the artifacts tier, docs/artifacts.md) is a small build: on its last round the worker
downloads the input artifact with the job's own artifactCredentials (boto3 reads AWS_ENDPOINT_URL_S3), writes
a zip with a SHA-256 manifest of the input's files, uploads it to the output artifact's location (SSE-KMS
when the job has an encryptionKey), and only then answers. With WORKER_SUCCESS_BEFORE_UPLOAD=1 it answers
first and uploads after: the bug class AG-OUTPUT-ARTIFACT catches.
"""

import hashlib
import io
import os
import signal
import sys
import time
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

stopping = False


def stop(_signum, _frame):
    global stopping
    stopping = True


def type_id(text):
    category, owner, provider, version = text.split("/")
    return {"category": category, "owner": owner, "provider": provider, "version": version}


def throttled(e):
    return e.response["Error"]["Code"] in ("ThrottlingException", "ServiceUnavailableException", "InternalFailure")


def call(fn, **kwargs):
    """Calls `fn`; when boto3's own retries give up on throttling, waits a little and tries again."""
    while True:
        try:
            return fn(**kwargs)
        except ClientError as e:
            if not throttled(e):
                raise
            time.sleep(0.2)


def artifact_client(data):
    creds = data["artifactCredentials"]
    return boto3.client(
        "s3",
        aws_access_key_id=creds["accessKeyId"],
        aws_secret_access_key=creds["secretAccessKey"],
        aws_session_token=creds["sessionToken"],
        config=Config(s3={"addressing_style": "path"}),
    )


def build(data):
    """Reads the input artifact and writes the output one, with this job's credentials."""
    s3 = artifact_client(data)
    manifest = []
    for artifact in data.get("inputArtifacts", []):
        loc = artifact["location"]["s3Location"]
        body = s3.get_object(Bucket=loc["bucketName"], Key=loc["objectKey"])["Body"].read()
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            for name in sorted(z.namelist()):
                manifest.append(f"{hashlib.sha256(z.read(name)).hexdigest()}  {name}")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("MANIFEST.sha256", "\n".join(manifest) + "\n")
    extra = {}
    if data.get("encryptionKey"):
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": data["encryptionKey"]["id"]}
    for artifact in data.get("outputArtifacts", []):
        loc = artifact["location"]["s3Location"]
        s3.put_object(Bucket=loc["bucketName"], Key=loc["objectKey"], Body=out.getvalue(), **extra)


def handle(cp, job):
    job_id = job["id"]
    data = job["data"]
    has_artifacts = bool(data.get("inputArtifacts") or data.get("outputArtifacts"))
    late_upload = os.environ.get("WORKER_SUCCESS_BEFORE_UPLOAD") == "1"
    rounds = int(data.get("actionConfiguration", {}).get("configuration", {}).get("Rounds", "3"))
    token = data.get("continuationToken")
    done = int(token) + 1 if token else 1
    details = {"externalExecutionId": "work-" + job_id[:8], "summary": f"round {done} of {rounds}"}
    if done >= rounds:
        details["percentComplete"] = 100
        if has_artifacts and not late_upload:
            build(data)
        call(cp.put_job_success_result, jobId=job_id, executionDetails=details)
        if has_artifacts and late_upload:
            try:
                build(data)
            except ClientError as e:
                print(f"worker: the late upload failed: {e}", file=sys.stderr)
    else:
        details["percentComplete"] = int(100 * done / rounds)
        call(
            cp.put_job_success_result,
            jobId=job_id,
            continuationToken=str(done),
            executionDetails=details,
        )


def main():
    signal.signal(signal.SIGTERM, stop)
    cp = boto3.client("codepipeline")
    action_type = type_id(os.environ["JOB_ACTION_TYPE"])
    interval = int(os.environ.get("JOB_POLL_INTERVAL_MS", "1000")) / 1000.0
    query = {}
    if os.environ.get("JOB_QUERY_PARAM"):
        name, value = os.environ["JOB_QUERY_PARAM"].split("=", 1)
        query = {"queryParam": {name: value}}
    while not stopping:
        jobs = call(cp.poll_for_jobs, actionTypeId=action_type, maxBatchSize=1, **query)["jobs"]
        if not jobs:
            time.sleep(interval)
            continue
        for job in jobs:
            try:
                call(cp.acknowledge_job, jobId=job["id"], nonce=job["nonce"])
            except ClientError as e:
                if e.response["Error"]["Code"] == "InvalidNonceException":
                    continue  # another worker has it
                raise
            handle(cp, job)
    print("worker: stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
