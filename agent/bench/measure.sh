#!/usr/bin/env bash
# Measures the agent's RSS and CPU while idle and with many action executions in flight, against the two
# fakes on loopback (manual clocks, polls parked up to 200 ms, JOB_POLL_INTERVAL_MS=0: the harness setup).
#
#   cargo build --release -p agent -p fake-codepipeline -p fake-apica
#   agent/bench/measure.sh [EXECUTIONS] [ROUNDS]      # defaults: 1000 executions, 5 rounds
#
# Idle: 10 s with nothing queued. Loaded: EXECUTIONS executions of a 6 h test are started (every first job
# answered with a token), then ROUNDS continuation rounds (both clocks move 30 s; every execution's job is
# queued at once), with 20 ms of backend latency so up to AGENT_MAX_IN_FLIGHT (64) jobs are held at once.
# CPU is the agent's (utime + stime) over wall time, in % of one core.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
ROUNDS=${2:-5}
BIN=target/release
CP=http://127.0.0.1:18080
AP=http://127.0.0.1:18081
METRICS=http://127.0.0.1:18082/metrics
TMP=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

nohup $BIN/fake-codepipeline --listen 127.0.0.1:18080 --clock manual --park-polls 200ms \
  --access-key AKIDBENCH:benchsecret >"$TMP/cp.log" 2>&1 </dev/null & pids+=($!)
nohup $BIN/fake-apica --listen 127.0.0.1:18081 --clock manual --token bench-token --preset long=6h:passed \
  >"$TMP/apica.log" 2>&1 </dev/null & pids+=($!)
for _ in $(seq 100); do curl -sf -m 1 $CP/_sim/clock >/dev/null && curl -sf -m 1 $AP/_sim/clock >/dev/null && break; sleep 0.1; done
curl -sf -m 2 -XPOST $CP/_sim/action-types -d '{"actionType": "Test/Custom/ApicaLoadtest/1",
  "configurationProperties": [{"name": "PresetName", "required": true, "key": true, "secret": false},
                              {"name": "RunnableFile", "required": true, "key": false, "secret": false}]}' >/dev/null

env -i PATH="$PATH" HOME="$TMP" AWS_ENDPOINT_URL_CODEPIPELINE=$CP AWS_ACCESS_KEY_ID=AKIDBENCH \
  AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  JOB_ACTION_TYPE=Test/Custom/ApicaLoadtest/1 JOB_POLL_INTERVAL_MS=0 APICA_API_URL=$AP \
  APICA_API_TOKEN=bench-token AGENT_LISTEN=127.0.0.1:18082 AGENT_LOG=warn \
  nohup $BIN/agent >"$TMP/agent.log" 2>&1 </dev/null & AGENT=$!
pids+=($AGENT)

ticks() { awk '{print $14 + $15}' /proc/$AGENT/stat; }
rss() { awk '/^VmRSS/ {print $2 " KiB"}' /proc/$AGENT/status; }
hwm() { awk '/^VmHWM/ {print $2 " KiB"}' /proc/$AGENT/status; }
HZ=$(getconf CLK_TCK)
now() { date +%s.%N; }
pct() { echo "scale=2; ($2 - $1) * 100 / $HZ / ($4 - $3)" | bc; }
continued() { curl -sf -m 2 $METRICS | awk '/outcome="continued"/ {print $2}'; }

sleep 2
t0=$(ticks); w0=$(now); sleep 10; t1=$(ticks); w1=$(now)
echo "idle: RSS $(rss), CPU $(pct "$t0" "$t1" "$w0" "$w1") % over 10 s"

curl -sf -m 2 -XPOST $AP/_sim/faults -d '{"kind": "latency", "latency": "20ms"}' >/dev/null
t0=$(ticks); w0=$(now)
for i in $(seq "$N"); do
  curl -sf -m 2 -o /dev/null -XPOST $CP/_sim/executions \
    -d "{\"actionType\": \"Test/Custom/ApicaLoadtest/1\", \"configuration\": {\"PresetName\": \"long\", \"RunnableFile\": \"b-$i.jmx\"}}"
done
for _ in $(seq 300); do [ "$(continued)" -ge "$N" ] && break; sleep 0.1; done
t1=$(ticks); w1=$(now)
echo "start: $N executions started and first jobs answered in $(echo "$w1 - $w0" | bc | cut -c1-5) s; RSS $(rss), CPU $(pct "$t0" "$t1" "$w0" "$w1") %"
t0=$(ticks); w0=$(now)
for r in $(seq "$ROUNDS"); do
  curl -sf -m 2 -o /dev/null -XPOST $AP/_sim/clock -d '{"by": "30s"}'
  curl -sf -m 2 -o /dev/null -XPOST $CP/_sim/clock -d '{"by": "30s"}'
  want=$((N * (r + 1)))
  for _ in $(seq 600); do [ "$(continued)" -ge "$want" ] && break; sleep 0.05; done
  echo "round $r: $(continued) jobs answered, RSS $(rss)"
done
t1=$(ticks); w1=$(now)
echo "rounds: $ROUNDS x $N jobs in $(echo "$w1 - $w0" | bc | cut -c1-5) s; CPU $(pct "$t0" "$t1" "$w0" "$w1") %; RSS $(rss), peak $(hwm)"
t0=$(ticks); w0=$(now); sleep 10; t1=$(ticks); w1=$(now)
echo "idle with $N executions between rounds: RSS $(rss), CPU $(pct "$t0" "$t1" "$w0" "$w1") % over 10 s"
curl -sf -m 2 $METRICS | grep -E '^agent_(poll_errors|throttles)_total|outcome="(answer_error|skipped)"'
