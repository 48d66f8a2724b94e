#!/usr/bin/env bash
# Measures the agent's RSS and CPU while idle and with many action executions in flight, against the two
# fakes on loopback (manual clocks, polls parked up to 200 ms, as under the harness).
#
#   cargo build --release -p agent -p fake-codepipeline -p fake-apica
#   agent/bench/measure.sh [EXECUTIONS] [ROUNDS]      # defaults: 1000 executions, 6 rounds
#
# Idle: 10 s with nothing queued. Loaded: EXECUTIONS executions of a 6 h test; every first job is answered,
# then ROUNDS continuation rounds (the clocks move 30 s each), with 20 ms of backend latency so up to
# AGENT_MAX_IN_FLIGHT jobs are held at once. CPU is (utime + stime) / wall time of the agent process.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
ROUNDS=${2:-6}
BIN=target/release
CP=127.0.0.1:18080
AP=127.0.0.1:18081
TMP=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

$BIN/fake-codepipeline --listen $CP --clock manual --park-polls 200ms --access-key AKIDBENCH:benchsecret \
  >"$TMP/cp.log" 2>&1 & pids+=($!)
$BIN/fake-apica --listen $AP --clock manual --token bench-token --preset long=6h:passed >"$TMP/apica.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf http://$CP/_sim/clock >/dev/null && curl -sf http://$AP/_sim/clock >/dev/null && break; sleep 0.1; done

curl -sf -XPOST http://$CP/_sim/action-types -d '{"actionType": "Test/Custom/ApicaLoadtest/1",
  "configurationProperties": [{"name": "PresetName", "required": true, "key": true, "secret": false},
                              {"name": "RunnableFile", "required": true, "key": false, "secret": false}]}' >/dev/null

env -i PATH="$PATH" HOME="$TMP" AWS_ENDPOINT_URL_CODEPIPELINE=http://$CP AWS_ACCESS_KEY_ID=AKIDBENCH \
  AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  JOB_ACTION_TYPE=Test/Custom/ApicaLoadtest/1 JOB_POLL_INTERVAL_MS=0 APICA_API_URL=http://$AP \
  APICA_API_TOKEN=bench-token AGENT_LOG=warn $BIN/agent >"$TMP/agent.log" 2>&1 & AGENT=$!
pids+=($AGENT)

ticks() { awk '{print $14 + $15}' /proc/$AGENT/stat; }
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$AGENT/status; }
hwm_kb() { awk '/^VmHWM/ {print $2}' /proc/$AGENT/status; }
HZ=$(getconf CLK_TCK)
now() { date +%s.%N; }
cpu_pct() { echo "scale=2; ($2 - $1) * 100 / $HZ / ($4 - $3)" | bc; }

sleep 2
t0=$(ticks); w0=$(now); sleep 10; t1=$(ticks); w1=$(now)
echo "idle:   RSS $(rss_kb) KiB, CPU $(cpu_pct "$t0" "$t1" "$w0" "$w1") % over 10 s (polls parked 200 ms)"

curl -sf -XPOST http://$AP/_sim/faults -d '{"kind": "latency", "latency": "20ms"}' >/dev/null
t0=$(ticks); w0=$(now)
for i in $(seq "$N"); do
  curl -sf -XPOST http://$CP/_sim/executions \
    -d "{\"actionType\": \"Test/Custom/ApicaLoadtest/1\", \"configuration\": {\"PresetName\": \"long\", \"RunnableFile\": \"b-$i.jmx\"}}" >/dev/null
done
answered() { curl -sf "http://$CP/_sim/events?since=0&wait=0&limit=100000" | grep -c '"kind":"result_applied"' || true; }
want=$N
for round in $(seq 0 "$ROUNDS"); do
  for _ in $(seq 600); do [ "$(answered)" -ge "$want" ] && break; sleep 0.1; done
  echo "round $round: $(answered) results applied, RSS $(rss_kb) KiB"
  curl -sf -XPOST http://$CP/_sim/clock -d '{"by": "30s"}' >/dev/null
  curl -sf -XPOST http://$AP/_sim/clock -d '{"by": "30s"}' >/dev/null
  want=$((want + N))
done
t1=$(ticks); w1=$(now)
echo "loaded: $N executions in flight, $(answered) results: RSS $(rss_kb) KiB (peak $(hwm_kb) KiB), CPU $(cpu_pct "$t0" "$t1" "$w0" "$w1") % over $(echo "$w1 - $w0" | bc | cut -c1-5) s"
t0=$(ticks); w0=$(now); sleep 10; t1=$(ticks); w1=$(now)
echo "idle again with $N executions between rounds: RSS $(rss_kb) KiB, CPU $(cpu_pct "$t0" "$t1" "$w0" "$w1") %"
