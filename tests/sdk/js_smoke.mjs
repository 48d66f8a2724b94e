// Wire smoke test of the fake CodePipeline through the AWS SDK for JavaScript v3 (run by
// tests/tests/sdk_js.rs).
//
// Drives the job-worker API exactly as a Node worker would and prints one JSON object on stdout with what
// the SDK parsed, in the same shape as tests/sdk/boto3_smoke.py. It asserts nothing itself: the Rust test
// holds both SDKs to the same expectations (tests/src/smoke.rs). A call that fails unexpectedly throws,
// which exits non-zero with the stack on stderr.
//
// Phase `first`: the first third-party job (answered with a continuation token and the Details link), the
// whole custom flow ending in a failure, the error codes, GetPipelineState. Phase `second` (after the test
// moved the simulated clock past the continuation delay): the continuation job, finished with 100%.
//
// Inputs come from the environment: SDK_JS_NODE_MODULES (the folder holding the pinned node_modules, which
// the test installs into the cargo target dir), CP_PHASE, CP_ENDPOINT, CP_KEY1_ID, CP_KEY1_SECRET,
// CP_KEY2_ID, CP_KEY2_SECRET, CP_CLIENT_ID, CP_CLIENT_TOKEN, CP_THIRD_PARTY, CP_CUSTOM
// (Category/Owner/Provider/Version), CP_TP_PRESET, CP_CUSTOM_PRESET, CP_TP_PIPELINE.

import { createRequire } from "node:module";
import path from "node:path";

const ENV = process.env;
// ESM ignores NODE_PATH, so resolve the SDK from the installed folder explicitly.
const require = createRequire(path.join(ENV.SDK_JS_NODE_MODULES, "package.json"));
const sdk = require("@aws-sdk/client-codepipeline");
const sdkVersion = require("@aws-sdk/client-codepipeline/package.json").version;

const TOKEN = "153245:0";
const EXTERNAL_ID = "153245";
const clients = [];

function client(accessKeyId, secretAccessKey) {
  const c = new sdk.CodePipelineClient({
    endpoint: ENV.CP_ENDPOINT,
    region: "us-east-1",
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
  clients.push(c);
  return c;
}

function typeId(text) {
  const [category, owner, provider, version] = text.split("/");
  return { category, owner, provider, version };
}

async function call(c, Command, input) {
  return c.send(new Command(input));
}

// Calls the operation and returns the error the SDK parsed; the call must fail.
async function expectError(c, Command, input) {
  try {
    await c.send(new Command(input));
  } catch (err) {
    if (err.$metadata === undefined) throw err; // not a service error (network, parsing): a failure.
    return { code: err.name, message: err.message ?? "", status: err.$metadata.httpStatusCode };
  }
  return { code: "<no error>", message: "", status: 200 };
}

async function pipelineState(c, name) {
  const state = await call(c, sdk.GetPipelineStateCommand, { name });
  // The action's stage is the last: a synthetic pipeline starts with a Source stage.
  const latest = state.stageStates[state.stageStates.length - 1].actionStates[0].latestExecution ?? {};
  const change = latest.lastStatusChange;
  return {
    pipeline: state.pipelineName,
    status: latest.status ?? null,
    external_execution_id: latest.externalExecutionId ?? null,
    external_execution_url: latest.externalExecutionUrl ?? null,
    summary: latest.summary ?? null,
    percent_complete: latest.percentComplete ?? null,
    // The SDK parses the epoch-seconds number into a Date; hand it back as epoch seconds.
    last_status_change: change instanceof Date ? change.getTime() / 1000 : (change ?? null),
    last_status_change_type: change instanceof Date ? "datetime" : typeof change,
  };
}

async function thirdPartyJob(c, actionTypeId) {
  const polled = await call(c, sdk.PollForThirdPartyJobsCommand, { actionTypeId, maxBatchSize: 5 });
  const jobs = polled.jobs ?? [];
  if (jobs.length !== 1) return { count: jobs.length, polled };
  const details = await call(c, sdk.GetThirdPartyJobDetailsCommand, {
    jobId: jobs[0].jobId,
    clientToken: ENV.CP_CLIENT_TOKEN,
  });
  return { count: 1, job: jobs[0], details: details.jobDetails, polled };
}

async function first(cp, cp2) {
  const out = {};
  const tpType = typeId(ENV.CP_THIRD_PARTY);
  const customType = typeId(ENV.CP_CUSTOM);
  const clientToken = ENV.CP_CLIENT_TOKEN;

  // Third party: poll -> details (nonce) -> acknowledge -> success with a token and the Details link.
  const { count, job, details, polled } = await thirdPartyJob(cp, tpType);
  const tp = { polled: count, request_id: polled.$metadata.requestId ?? "" };
  out.third_party = tp;
  if (!job) return out;
  const jobId = job.jobId;
  tp.job_id = jobId;
  tp.client_id = job.clientId ?? null;
  const data = details.data ?? {};
  tp.details_job_id = details.id ?? null;
  tp.continuation_token = data.continuationToken ?? null;
  tp.preset = data.actionConfiguration?.configuration?.PresetName ?? null;
  tp.action_type_owner = data.actionTypeId?.owner ?? null;

  const errors = {};
  out.errors = errors;
  errors.wrong_client_token = await expectError(cp, sdk.GetThirdPartyJobDetailsCommand, {
    jobId,
    clientToken: "not-the-client-token",
  });
  errors.wrong_nonce_third_party = await expectError(cp, sdk.AcknowledgeThirdPartyJobCommand, {
    jobId,
    nonce: "not-the-nonce",
    clientToken,
  });
  const ack = await call(cp, sdk.AcknowledgeThirdPartyJobCommand, { jobId, nonce: details.nonce, clientToken });
  tp.ack_status = ack.status ?? null;
  const put = await call(cp, sdk.PutThirdPartyJobSuccessResultCommand, {
    jobId,
    clientToken,
    continuationToken: TOKEN,
    executionDetails: { externalExecutionId: EXTERNAL_ID, summary: "Load test started", percentComplete: 0 },
  });
  tp.put_status = put.$metadata.httpStatusCode;
  // Signed with the second key: both configured keys are accepted.
  out.state = await pipelineState(cp2, ENV.CP_TP_PIPELINE);

  // Custom: poll with queryParam -> acknowledge -> (invalid success refused) -> failure.
  const custom = {};
  out.custom = custom;
  const other = await call(cp, sdk.PollForJobsCommand, {
    actionTypeId: customType,
    maxBatchSize: 1,
    queryParam: { PresetName: "no-such-preset" },
  });
  custom.polled_other_preset = (other.jobs ?? []).length;
  const cpolled = await call(cp, sdk.PollForJobsCommand, {
    actionTypeId: customType,
    maxBatchSize: 1,
    queryParam: { PresetName: ENV.CP_CUSTOM_PRESET },
  });
  const cjobs = cpolled.jobs ?? [];
  custom.polled = cjobs.length;
  if (cjobs.length !== 1) return out;
  const cjob = cjobs[0];
  custom.job_id = cjob.id;
  custom.preset = cjob.data?.actionConfiguration?.configuration?.PresetName ?? null;
  errors.wrong_nonce_custom = await expectError(cp, sdk.AcknowledgeJobCommand, {
    jobId: cjob.id,
    nonce: "not-the-nonce",
  });
  const cack = await call(cp, sdk.AcknowledgeJobCommand, { jobId: cjob.id, nonce: cjob.nonce });
  custom.ack_status = cack.status ?? null;
  // The JS SDK does not validate ranges, so percentComplete 150 reaches the server.
  errors.percent_150 = await expectError(cp, sdk.PutJobSuccessResultCommand, {
    jobId: cjob.id,
    executionDetails: { externalExecutionId: "c-1", summary: "too far", percentComplete: 150 },
  });
  const cput = await call(cp, sdk.PutJobFailureResultCommand, {
    jobId: cjob.id,
    failureDetails: { type: "JobFailed", message: "Load test failed: p95 over budget", externalExecutionId: "c-1" },
  });
  custom.put_status = cput.$metadata.httpStatusCode;

  // Authentication failures.
  const badSecret = client(ENV.CP_KEY1_ID, ENV.CP_KEY1_SECRET + "-wrong");
  errors.bad_secret = await expectError(badSecret, sdk.PollForJobsCommand, { actionTypeId: customType });
  const unknownKey = client("AKIDUNKNOWN000000000", "whatever-secret");
  errors.unknown_key = await expectError(unknownKey, sdk.PollForJobsCommand, { actionTypeId: customType });
  return out;
}

async function second(cp, cp2) {
  const out = {};
  const tpType = typeId(ENV.CP_THIRD_PARTY);
  const clientToken = ENV.CP_CLIENT_TOKEN;
  const { count, job, details, polled } = await thirdPartyJob(cp2, tpType);
  const tp = { polled: count, request_id: polled.$metadata.requestId ?? "" };
  out.third_party = tp;
  if (!job) return out;
  const jobId = job.jobId;
  tp.job_id = jobId;
  tp.continuation_token = details.data?.continuationToken ?? null;
  const ack = await call(cp2, sdk.AcknowledgeThirdPartyJobCommand, { jobId, nonce: details.nonce, clientToken });
  tp.ack_status = ack.status ?? null;
  const put = await call(cp2, sdk.PutThirdPartyJobSuccessResultCommand, {
    jobId,
    clientToken,
    executionDetails: { externalExecutionId: EXTERNAL_ID, summary: "Load test passed", percentComplete: 100 },
  });
  tp.put_status = put.$metadata.httpStatusCode;
  out.state = await pipelineState(cp, ENV.CP_TP_PIPELINE);
  return out;
}

async function main() {
  const cp = client(ENV.CP_KEY1_ID, ENV.CP_KEY1_SECRET);
  const cp2 = client(ENV.CP_KEY2_ID, ENV.CP_KEY2_SECRET);
  const phase = ENV.CP_PHASE;
  try {
    const out = phase === "first" ? await first(cp, cp2) : await second(cp, cp2);
    out.sdk = `@aws-sdk/client-codepipeline ${sdkVersion}`;
    out.phase = phase;
    process.stdout.write(JSON.stringify(out) + "\n");
  } finally {
    for (const c of clients) c.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
