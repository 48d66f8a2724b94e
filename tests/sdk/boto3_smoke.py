"""Wire smoke test of the fake CodePipeline through boto3 (run by tests/tests/sdk_python.rs).

Drives the job-worker API exactly as a boto3 worker would and prints one JSON object on stdout with what
the SDK parsed. It asserts nothing itself: the Rust test holds boto3 and the JavaScript SDK to the same
expectations (tests/src/smoke.rs). A call that fails unexpectedly raises, which exits non-zero with the
traceback on stderr.

Phase `first`: the first third-party job (answered with a continuation token and the Details link), the
whole custom flow ending in a failure, the error codes, GetPipelineState. Phase `second` (after the test
moved the simulated clock past the continuation delay): the continuation job, finished with 100%.

Inputs come from the environment: CP_PHASE, CP_ENDPOINT, CP_KEY1_ID, CP_KEY1_SECRET, CP_KEY2_ID,
CP_KEY2_SECRET, CP_CLIENT_ID, CP_CLIENT_TOKEN, CP_THIRD_PARTY, CP_CUSTOM (Category/Owner/Provider/Version),
CP_TP_PRESET, CP_CUSTOM_PRESET, CP_TP_PIPELINE.
"""

import json
import os
import sys

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

ENV = os.environ
TOKEN = "153245:0"
EXTERNAL_ID = "153245"


def client(key_id, secret):
    return boto3.client(
        "codepipeline",
        endpoint_url=ENV["CP_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def type_id(text):
    category, owner, provider, version = text.split("/")
    return {"category": category, "owner": owner, "provider": provider, "version": version}


def expect_error(call, **kwargs):
    """Calls `call` and returns the error boto3 parsed; the call must fail."""
    try:
        call(**kwargs)
    except ClientError as e:
        return {
            "code": e.response["Error"]["Code"],
            "message": e.response["Error"].get("Message", ""),
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
        }
    return {"code": "<no error>", "message": "", "status": 200}


def request_id(resp):
    return resp["ResponseMetadata"].get("RequestId", "")


def pipeline_state(cp, name):
    state = cp.get_pipeline_state(name=name)
    # The action's stage is the last: a synthetic pipeline starts with a Source stage.
    action = state["stageStates"][-1]["actionStates"][0]
    latest = action.get("latestExecution", {})
    change = latest.get("lastStatusChange")
    return {
        "pipeline": state["pipelineName"],
        "status": latest.get("status"),
        "external_execution_id": latest.get("externalExecutionId"),
        "external_execution_url": latest.get("externalExecutionUrl"),
        "summary": latest.get("summary"),
        "percent_complete": latest.get("percentComplete"),
        # boto3 parses the epoch-seconds number into a datetime; hand it back as epoch seconds.
        "last_status_change": change.timestamp() if change is not None else None,
        "last_status_change_type": type(change).__name__,
    }


def third_party_job(cp, action_type):
    """Polls one third-party job and returns (job id, client id, job details after GetThirdPartyJobDetails)."""
    polled = cp.poll_for_third_party_jobs(actionTypeId=action_type, maxBatchSize=5)
    jobs = polled["jobs"]
    if len(jobs) != 1:
        return len(jobs), None, None, polled
    details = cp.get_third_party_job_details(jobId=jobs[0]["jobId"], clientToken=ENV["CP_CLIENT_TOKEN"])
    return len(jobs), jobs[0], details["jobDetails"], polled


def first(cp, cp2):
    out = {}
    tp_type = type_id(ENV["CP_THIRD_PARTY"])
    custom_type = type_id(ENV["CP_CUSTOM"])
    client_token = ENV["CP_CLIENT_TOKEN"]

    # Third party: poll -> details (nonce) -> acknowledge -> success with a token and the Details link.
    count, job, details, polled = third_party_job(cp, tp_type)
    tp = {"polled": count, "request_id": request_id(polled)}
    out["third_party"] = tp
    if job is None:
        return out
    job_id = job["jobId"]
    tp["job_id"] = job_id
    tp["client_id"] = job.get("clientId")
    data = details.get("data", {})
    tp["details_job_id"] = details.get("id")
    tp["continuation_token"] = data.get("continuationToken")
    tp["preset"] = data.get("actionConfiguration", {}).get("configuration", {}).get("PresetName")
    tp["action_type_owner"] = data.get("actionTypeId", {}).get("owner")

    errors = {}
    out["errors"] = errors
    errors["wrong_client_token"] = expect_error(
        cp.get_third_party_job_details, jobId=job_id, clientToken="not-the-client-token"
    )
    errors["wrong_nonce_third_party"] = expect_error(
        cp.acknowledge_third_party_job, jobId=job_id, nonce="not-the-nonce", clientToken=client_token
    )
    ack = cp.acknowledge_third_party_job(jobId=job_id, nonce=details["nonce"], clientToken=client_token)
    tp["ack_status"] = ack.get("status")
    put = cp.put_third_party_job_success_result(
        jobId=job_id,
        clientToken=client_token,
        continuationToken=TOKEN,
        executionDetails={"externalExecutionId": EXTERNAL_ID, "summary": "Load test started", "percentComplete": 0},
    )
    tp["put_status"] = put["ResponseMetadata"]["HTTPStatusCode"]
    # Signed with the second key: both configured keys are accepted.
    out["state"] = pipeline_state(cp2, ENV["CP_TP_PIPELINE"])

    # Custom: poll with queryParam -> acknowledge -> (invalid success refused) -> failure.
    custom = {}
    out["custom"] = custom
    other = cp.poll_for_jobs(actionTypeId=custom_type, maxBatchSize=1, queryParam={"PresetName": "no-such-preset"})
    custom["polled_other_preset"] = len(other["jobs"])
    polled = cp.poll_for_jobs(
        actionTypeId=custom_type, maxBatchSize=1, queryParam={"PresetName": ENV["CP_CUSTOM_PRESET"]}
    )
    custom["polled"] = len(polled["jobs"])
    if len(polled["jobs"]) != 1:
        return out
    job = polled["jobs"][0]
    job_id = job["id"]
    custom["job_id"] = job_id
    custom["preset"] = job.get("data", {}).get("actionConfiguration", {}).get("configuration", {}).get("PresetName")
    errors["wrong_nonce_custom"] = expect_error(cp.acknowledge_job, jobId=job_id, nonce="not-the-nonce")
    ack = cp.acknowledge_job(jobId=job_id, nonce=job["nonce"])
    custom["ack_status"] = ack.get("status")
    # botocore validates only `min`, so percentComplete 150 reaches the server.
    errors["percent_150"] = expect_error(
        cp.put_job_success_result,
        jobId=job_id,
        executionDetails={"externalExecutionId": "c-1", "summary": "too far", "percentComplete": 150},
    )
    put = cp.put_job_failure_result(
        jobId=job_id,
        failureDetails={"type": "JobFailed", "message": "Load test failed: p95 over budget", "externalExecutionId": "c-1"},
    )
    custom["put_status"] = put["ResponseMetadata"]["HTTPStatusCode"]

    # Authentication failures, parsed from the body's __type.
    bad_secret = client(ENV["CP_KEY1_ID"], ENV["CP_KEY1_SECRET"] + "-wrong")
    errors["bad_secret"] = expect_error(bad_secret.poll_for_jobs, actionTypeId=custom_type)
    unknown_key = client("AKIDUNKNOWN000000000", "whatever-secret")
    errors["unknown_key"] = expect_error(unknown_key.poll_for_jobs, actionTypeId=custom_type)
    return out


def second(cp, cp2):
    out = {}
    tp_type = type_id(ENV["CP_THIRD_PARTY"])
    client_token = ENV["CP_CLIENT_TOKEN"]
    count, job, details, polled = third_party_job(cp2, tp_type)
    tp = {"polled": count, "request_id": request_id(polled)}
    out["third_party"] = tp
    if job is None:
        return out
    job_id = job["jobId"]
    tp["job_id"] = job_id
    tp["continuation_token"] = details.get("data", {}).get("continuationToken")
    ack = cp2.acknowledge_third_party_job(jobId=job_id, nonce=details["nonce"], clientToken=client_token)
    tp["ack_status"] = ack.get("status")
    put = cp2.put_third_party_job_success_result(
        jobId=job_id,
        clientToken=client_token,
        executionDetails={"externalExecutionId": EXTERNAL_ID, "summary": "Load test passed", "percentComplete": 100},
    )
    tp["put_status"] = put["ResponseMetadata"]["HTTPStatusCode"]
    out["state"] = pipeline_state(cp, ENV["CP_TP_PIPELINE"])
    return out


def main():
    cp = client(ENV["CP_KEY1_ID"], ENV["CP_KEY1_SECRET"])
    cp2 = client(ENV["CP_KEY2_ID"], ENV["CP_KEY2_SECRET"])
    phase = ENV["CP_PHASE"]
    out = first(cp, cp2) if phase == "first" else second(cp, cp2)
    out["sdk"] = f"boto3 {boto3.__version__} botocore {botocore.__version__}"
    out["phase"] = phase
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
