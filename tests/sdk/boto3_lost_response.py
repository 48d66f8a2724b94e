"""A lost response through boto3 (run by tests/tests/lost_response.rs): the fake applies a
PutJobSuccessResult and closes the connection before answering; boto3 retries it (botocore's retry
handler treats a closed connection as retryable) and its retry, identical, is refused as a repeat.

Inputs: CP_ENDPOINT, CP_KEY_ID, CP_KEY_SECRET, CP_JOB_ID (an acknowledged custom job; the test has set a
lost-response fault on PutJobSuccessResult). Prints one JSON object: the error code boto3 raised and how
many attempts it made.
"""

import json
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENV = os.environ
CP = boto3.client(
    "codepipeline",
    endpoint_url=ENV["CP_ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id=ENV["CP_KEY_ID"],
    aws_secret_access_key=ENV["CP_KEY_SECRET"],
    config=Config(retries={"mode": "standard", "max_attempts": 3}),
)

try:
    CP.put_job_success_result(
        jobId=ENV["CP_JOB_ID"],
        executionDetails={"summary": "done", "externalExecutionId": "4242", "percentComplete": 100},
    )
    print(json.dumps({"error": None, "attempts": None}))
except ClientError as e:
    meta = e.response.get("ResponseMetadata", {})
    print(json.dumps({"error": e.response["Error"]["Code"], "attempts": meta.get("RetryAttempts", 0) + 1}))
