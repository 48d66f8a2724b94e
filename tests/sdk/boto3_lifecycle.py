"""Pipeline-execution lifecycle through boto3 (run by tests/tests/lifecycle.rs): StopPipelineExecution
(stop and wait, stop and abandon), RetryStageExecution, ListPipelineExecutions, stage locking,
Enable/DisableStageTransition, UpdatePipeline (a masked secret kept) and DeletePipeline, as a boto3 user
calls them, against an in-process fake with a manual clock.

Each section asserts what a user relies on and the script exits non-zero with the traceback on the
first surprise. On success it prints one JSON object with what boto3 parsed, which the Rust test checks
again.

Inputs come from the environment: CP_ENDPOINT (the fake; its admin API is under /_sim/), CP_KEY_ID,
CP_KEY_SECRET, CP_CUSTOM (Category/Owner/Provider/Version of a registered custom action type whose
properties are PresetName and RunnableFile, and ApiToken, a secret).
"""

import json
import os
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENV = os.environ
ENDPOINT = ENV["CP_ENDPOINT"]


def type_id(text):
    category, owner, provider, version = text.split("/")
    return {"category": category, "owner": owner, "provider": provider, "version": version}


CUSTOM = type_id(ENV["CP_CUSTOM"])
CP = boto3.client(
    "codepipeline",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id=ENV["CP_KEY_ID"],
    aws_secret_access_key=ENV["CP_KEY_SECRET"],
    config=Config(retries={"max_attempts": 1}),
)


def admin(path, body):
    req = urllib.request.Request(
        ENDPOINT + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def start(name):
    return admin(
        "/_sim/executions",
        {"actionType": ENV["CP_CUSTOM"], "configuration": {"PresetName": name, "RunnableFile": name + ".jmx"}},
    )


def take():
    """Polls and acknowledges the next custom job; the job (or None)."""
    jobs = CP.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=1)["jobs"]
    if not jobs:
        return None
    job = jobs[0]
    status = CP.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"]
    assert status == "InProgress", status
    return job


def error_of(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"].get("Message", "")
    raise AssertionError("%s(%r) succeeded; an error was expected" % (call.__name__, kwargs))


def pe_status(run):
    return CP.get_pipeline_execution(pipelineName=run["pipelineName"], pipelineExecutionId=run["pipelineExecutionId"])[
        "pipelineExecution"
    ]["status"]


def action_executions(run):
    # The run's job-worker action only: the synthetic pipeline's Source action is listed too.
    listed = CP.list_action_executions(
        pipelineName=run["pipelineName"], filter={"pipelineExecutionId": run["pipelineExecutionId"]}
    )["actionExecutionDetails"]
    return [d for d in listed if d["stageName"] != "Source"]


def stage_state(run):
    # The action's stage: the last (a synthetic pipeline starts with a Source stage).
    return CP.get_pipeline_state(name=run["pipelineName"])["stageStates"][-1]


out = {}

# --- Stop and wait: the running job's result is accepted, then the execution is Stopped.
run = start("wait")
job = take()
resp = CP.stop_pipeline_execution(
    pipelineName=run["pipelineName"], pipelineExecutionId=run["pipelineExecutionId"], abandon=False, reason="freeze"
)
assert resp["pipelineExecutionId"] == run["pipelineExecutionId"], resp
assert pe_status(run) == "Stopping", pe_status(run)
assert stage_state(run)["latestExecution"]["status"] == "Stopping"
code, _ = error_of(
    CP.stop_pipeline_execution, pipelineName=run["pipelineName"], pipelineExecutionId=run["pipelineExecutionId"]
)
assert code == "DuplicatedStopRequestException", code
CP.put_job_success_result(
    jobId=job["id"], executionDetails={"summary": "done", "percentComplete": 100, "externalExecutionId": "x-1"}
)
out["wait"] = {"status": pe_status(run), "action": stage_state(run)["actionStates"][0]["latestExecution"]["status"]}
assert out["wait"] == {"status": "Stopped", "action": "Succeeded"}, out["wait"]
code, _ = error_of(
    CP.stop_pipeline_execution,
    pipelineName=run["pipelineName"],
    pipelineExecutionId=run["pipelineExecutionId"],
    abandon=True,
)
assert code == "PipelineExecutionNotStoppableException", code

# --- Stop and abandon: the action is Abandoned, a put is refused, no continuation job is offered.
run = start("abandon")
job = take()
CP.stop_pipeline_execution(pipelineName=run["pipelineName"], pipelineExecutionId=run["pipelineExecutionId"], abandon=True)
latest = stage_state(run)["actionStates"][0]["latestExecution"]
code, message = error_of(
    CP.put_job_success_result,
    jobId=job["id"],
    continuationToken="t-1",
    executionDetails={"summary": "still running", "percentComplete": 10},
)
admin("/_sim/clock", {"by": "1h"})
out["abandon"] = {
    "status": pe_status(run),
    "action": latest["status"],
    "put": code,
    "message": message,
    "polled_after": len(CP.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=10)["jobs"]),
}
assert out["abandon"]["status"] == "Stopped" and out["abandon"]["action"] == "Abandoned", out["abandon"]
assert code == "InvalidJobStateException" and "CP-ABANDONED" in message, (code, message)
assert out["abandon"]["polled_after"] == 0, out["abandon"]
listed = action_executions(run)
assert [d["status"] for d in listed] == ["Abandoned"], listed

# --- Retry: a failed action runs again as a new action execution, whose first job has no token.
run = start("retry")
job = take()
first_id = job["data"]["pipelineContext"]["action"]["actionExecutionId"]
CP.put_job_failure_result(jobId=job["id"], failureDetails={"type": "JobFailed", "message": "broken"})
assert pe_status(run) == "Failed"
stage = stage_state(run)["stageName"]
code, _ = error_of(
    CP.retry_stage_execution,
    pipelineName=run["pipelineName"],
    stageName="NoSuchStage",
    pipelineExecutionId=run["pipelineExecutionId"],
    retryMode="FAILED_ACTIONS",
)
assert code == "StageNotFoundException", code
resp = CP.retry_stage_execution(
    pipelineName=run["pipelineName"],
    stageName=stage,
    pipelineExecutionId=run["pipelineExecutionId"],
    retryMode="FAILED_ACTIONS",
)
assert resp["pipelineExecutionId"] == run["pipelineExecutionId"], resp
assert pe_status(run) == "InProgress"
code, _ = error_of(
    CP.retry_stage_execution,
    pipelineName=run["pipelineName"],
    stageName=stage,
    pipelineExecutionId=run["pipelineExecutionId"],
    retryMode="ALL_ACTIONS",
)
assert code == "StageNotRetryableException", code
job = take()
new_id = job["data"]["pipelineContext"]["action"]["actionExecutionId"]
assert new_id != first_id, new_id
assert "continuationToken" not in job["data"], job["data"]
listed = action_executions(run)
out["retry"] = {
    "first": first_id,
    "new": new_id,
    "listed": [(d["actionExecutionId"], d["status"]) for d in listed],
    "latest": stage_state(run)["actionStates"][0]["latestExecution"]["actionExecutionId"],
}
assert out["retry"]["listed"] == [(new_id, "InProgress"), (first_id, "Failed")], out["retry"]
assert out["retry"]["latest"] == new_id, out["retry"]
CP.put_job_success_result(jobId=job["id"], executionDetails={"summary": "done", "percentComplete": 100})
assert pe_status(run) == "Succeeded"

# --- A pipeline made through the API: two stages at least, the secret masked, UpdatePipeline keeps it,
# a stage holds one run, a disabled transition holds runs at its boundary, DeletePipeline removes it.
def stage(name, preset):
    return {
        "name": name,
        "actions": [
            {
                "name": "Load",
                "actionTypeId": CUSTOM,
                "configuration": {"PresetName": preset, "RunnableFile": preset + ".jmx", "ApiToken": "tok-123"},
            }
        ],
    }


SOURCE = {
    "name": "Source",
    "actions": [
        {
            "name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"},
        }
    ],
}
DECL = {
    "name": "boto-shop",
    "roleArn": "arn:aws:iam::111111111111:role/pipeline",
    "artifactStore": {"type": "S3", "location": "bucket"},
    "stages": [SOURCE, stage("Test", "p1"), stage("Deploy", "p2")],
}
code, _ = error_of(CP.create_pipeline, pipeline=dict(DECL, name="boto-one", stages=[stage("Test", "p1")]))
assert code == "InvalidStructureException", code
created = CP.create_pipeline(pipeline=DECL)["pipeline"]
assert created["stages"][1]["actions"][0]["configuration"]["ApiToken"] == "****", created
got = CP.get_pipeline(name="boto-shop")["pipeline"]
assert got["stages"][1]["actions"][0]["configuration"]["ApiToken"] == "****", got
assert got["executionMode"] == "SUPERSEDED" and got["pipelineType"] == "V1", got
got["stages"][1]["actions"][0]["configuration"]["PresetName"] = "p3"
updated = CP.update_pipeline(pipeline=got)["pipeline"]
assert updated["version"] == 2, updated
v1 = CP.get_pipeline(name="boto-shop", version=1)["pipeline"]
assert v1["version"] == 1 and v1["stages"][1]["actions"][0]["configuration"]["PresetName"] != "p3", v1
try:
    CP.get_pipeline(name="boto-shop", version=7)
    raise AssertionError("GetPipeline of a version never made succeeded")
except CP.exceptions.PipelineVersionNotFoundException:
    pass
CP.disable_stage_transition(pipelineName="boto-shop", stageName="Deploy", transitionType="Inbound", reason="freeze")
deploy_state = CP.get_pipeline_state(name="boto-shop")["stageStates"][2]["inboundTransitionState"]
assert deploy_state["enabled"] is False and deploy_state["disabledReason"] == "freeze", deploy_state
first = CP.start_pipeline_execution(name="boto-shop")["pipelineExecutionId"]
second = CP.start_pipeline_execution(name="boto-shop")["pipelineExecutionId"]
jobs = CP.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=10)["jobs"]
assert len(jobs) == 1, jobs
config = jobs[0]["data"]["actionConfiguration"]["configuration"]
assert config["ApiToken"] == "tok-123" and config["PresetName"] == "p3", config
CP.acknowledge_job(jobId=jobs[0]["id"], nonce=jobs[0]["nonce"])
CP.put_job_success_result(jobId=jobs[0]["id"], executionDetails={"summary": "done", "percentComplete": 100})
# The first run waits before Deploy; the second entered Test.
jobs = CP.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=10)["jobs"]
assert [j["data"]["pipelineContext"]["stage"]["name"] for j in jobs] == ["Test"], jobs
assert jobs[0]["data"]["pipelineContext"]["pipelineExecutionId"] == second, jobs
CP.enable_stage_transition(pipelineName="boto-shop", stageName="Deploy", transitionType="Inbound")
deploy_jobs = CP.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=10)["jobs"]
assert [j["data"]["pipelineContext"]["pipelineExecutionId"] for j in deploy_jobs] == [first], deploy_jobs
CP.delete_pipeline(name="boto-shop")
code, _ = error_of(CP.get_pipeline, name="boto-shop")
assert code == "PipelineNotFoundException", code
out["pipelines"] = {
    "version": updated["version"],
    "masked": got["stages"][1]["actions"][0]["configuration"]["ApiToken"],
    "deleted": code,
}

# --- ListPipelineExecutions: pages of maxResults, newest first, by nextToken and by the paginator.
ids = [run["pipelineExecutionId"]]
for _ in range(4):
    ids.append(CP.start_pipeline_execution(name=run["pipelineName"])["pipelineExecutionId"])
pages, token = [], None
while True:
    kwargs = {"pipelineName": run["pipelineName"], "maxResults": 2}
    if token:
        kwargs["nextToken"] = token
    page = CP.list_pipeline_executions(**kwargs)
    pages.append([s["pipelineExecutionId"] for s in page["pipelineExecutionSummaries"]])
    token = page.get("nextToken")
    if not token:
        break
assert pages == [ids[4:2:-1], ids[2:0:-1], ids[0:1]], pages
paginated = [
    s["pipelineExecutionId"]
    for p in CP.get_paginator("list_pipeline_executions").paginate(
        pipelineName=run["pipelineName"], PaginationConfig={"PageSize": 2}
    )
    for s in p["pipelineExecutionSummaries"]
]
assert paginated == ids[::-1], paginated
code, _ = error_of(CP.list_pipeline_executions, pipelineName=run["pipelineName"], nextToken="made-up")
assert code == "InvalidNextTokenException", code
out["list"] = {"pages": pages}

print(json.dumps(out))
