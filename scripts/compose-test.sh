#!/usr/bin/env bash
# `make compose-test`: the product on a Docker engine, end to end, with a timing for every step.
#
#   engine       a Docker engine that answers `docker info`. When none does and the machine allows
#                it (root, apt-get), installs docker.io + docker-compose + debootstrap and starts
#                dockerd (stopped again at the end). When no engine can be had, says WHY and exits
#                0: the compose test is SKIPPED, reported, and the rest of CI stands.
#   images       the pinned base images (scripts/offline-images.sh: `docker pull` first; without a
#                registry, the named offline fallback builds local stand-ins under the same tags),
#                then the worker image (build time, size; non-root, HEALTHCHECK, no compiler).
#   stack        docker-compose.yml under a unique project name: up -d → Kafka healthy → topics
#                created → worker healthy (+ ready) → seeder profile → consumer profile prints the 5
#                enriched seeds → --scale worker=2 → the seeds again with --new-ids from the host
#                (localhost:29092, .venv/bin/ingest) → 5 exact_duplicate → stop worker (graceful,
#                timed) → the Kafka container recreated on its volume → start worker → another
#                --new-ids replay is still a duplicate (state survived) → down -v leaves no
#                container, network or volume.
#   integration  tests/integration with KAFKA_TEST_BROKER=container: Kafka from this compose file's
#                kafka service (same image); prints the test count.
#
# Usage: scripts/compose-test.sh [engine|images|stack|integration ...]   (default: all of them)
# Environment: COMPOSE_TEST_ENGINE_SETUP=auto|no (no: never install or start an engine),
#              COMPOSE_TEST_KEEP_ENGINE=1 (leave a dockerd this script started running).
# Any failed assertion exits non-zero after printing the compose logs' tail.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
OUT=.cache/compose-test
mkdir -p "$OUT"
PHASES=" ${*:-engine images stack integration} "
ENGINE_SETUP=${COMPOSE_TEST_ENGINE_SETUP:-auto}
IMAGE=news-ingest-worker:latest
HOST_BOOTSTRAP=localhost:29092   # docker-compose.yml: HOST://localhost:29092, "29092:29092"
GRACE_S=$(sed -n 's/^ *stop_grace_period: *\([0-9]*\)s.*/\1/p' docker-compose.yml | head -1)
PROJECT=ingest-ct-$$-$(date +%s)
STARTED_DOCKERD=""
COMPOSE_BASE=""
SKIPPED=""
T0=$(date +%s.%N)
SUMMARY=()

say() { echo "[compose-test] $*"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
record() { SUMMARY+=("$(printf '%-58s %7s s' "$1" "$2")"); say "✓ $1 ($2 s)"; }

# step <title> <function> [args]: runs it, prints and records its time; a failure ends the script.
step() {
  local title=$1 t
  shift
  say "→ $title"
  t=$(date +%s.%N)
  if ! "$@"; then
    say "✗ $title FAILED after $(since "$t") s"
    exit 1
  fi
  record "$title" "$(since "$t")"
}

print_summary() {
  local line
  [[ ${#SUMMARY[@]} -gt 0 ]] || return 0
  echo
  say "timings"
  for line in "${SUMMARY[@]}"; do echo "  $line"; done
  echo "  $(printf '%-58s %7s s' total "$(since "$T0")")"
}

skip() {
  SKIPPED=1
  echo
  say "SKIPPED: the compose test did not run, because $*."
  say "(Nothing failed: everything else in CI ran without it. On a machine with a Docker engine,"
  say " or as root with apt-get, \`make compose-test\` runs it.)"
  exit 0
}

fail() { say "ASSERTION FAILED: $*"; return 1; }

on_exit() {
  local rc=$?
  if [[ -n $COMPOSE_BASE ]] && [[ $rc != 0 ]]; then
    echo; say "compose logs (tail):"
    $COMPOSE_BASE logs --no-color --tail 40 2>&1 | cut -c1-300 || true
    $COMPOSE_BASE down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  print_summary
  if [[ -n $STARTED_DOCKERD && -z ${COMPOSE_TEST_KEEP_ENGINE:-} ]]; then
    say "stopping the dockerd this script started (pid $STARTED_DOCKERD)"
    kill -TERM "$STARTED_DOCKERD" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.5; done
  fi
  if [[ -n $SKIPPED ]]; then say "SKIPPED (exit 0)"
  elif [[ $rc == 0 ]]; then say "PASSED"
  else say "FAILED (exit $rc)"; fi
}
trap on_exit EXIT

# ---- engine ----------------------------------------------------------------------------------

engine_answers() { docker info >/dev/null 2>&1; }
can_install() { [[ $EUID == 0 ]] && command -v apt-get >/dev/null; }

apt_install() {
  say "apt-get install -y $* (log: $OUT/apt.log)"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } >"$OUT/apt.log" 2>&1
}

# The compose command that works against the engine: `docker compose` (v2), else `docker-compose`
# (v1). Probed with `ps` (PyPI's v1 with docker-py 7 answers `version`, crashes on the engine).
find_compose() {
  local candidate
  for candidate in "docker compose" "docker-compose"; do
    if $candidate -f docker-compose.yml ps -q >/dev/null 2>&1; then echo "$candidate"; return 0; fi
  done
  return 1
}

ensure_engine() {
  local t
  if engine_answers; then
    say "a Docker engine answers (server $(docker version -f '{{.Server.Version}}' 2>/dev/null), storage $(docker info -f '{{.Driver}}' 2>/dev/null))"
  else
    [[ $ENGINE_SETUP != no ]] || skip "no Docker engine answers and COMPOSE_TEST_ENGINE_SETUP=no forbids starting one"
    if ! command -v dockerd >/dev/null; then
      if ! can_install; then
        [[ $EUID == 0 ]] || skip "no Docker engine answers, none is installed (no dockerd), and this user (uid $EUID) is not root, so it cannot install one"
        skip "no Docker engine answers, none is installed (no dockerd), and there is no apt-get to install docker.io"
      fi
      t=$(date +%s.%N)
      apt_install docker.io docker-compose debootstrap \
        || skip "no Docker engine answers and \`apt-get install docker.io\` failed: $(tail -3 "$OUT/apt.log" | tr '\n' ' ')"
      record "engine: apt-get install docker.io docker-compose debootstrap" "$(since "$t")"
    fi
    [[ $EUID == 0 ]] || skip "dockerd is installed but not running, and this user (uid $EUID) cannot start it (needs root)"
    pgrep -x dockerd >/dev/null && skip "a dockerd process runs but does not answer \`docker info\` (see its log; not touching it)"
    t=$(date +%s.%N)
    say "starting dockerd (log: $OUT/dockerd.log)"
    dockerd >"$OUT/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    for _ in $(seq 1 120); do
      engine_answers && break
      kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
      sleep 0.5
    done
    if ! engine_answers; then
      kill -TERM "$STARTED_DOCKERD" 2>/dev/null || true
      STARTED_DOCKERD=""
      skip "dockerd would not start on this machine (no privileges for namespaces/cgroups/iptables?); its log ends: $(tail -3 "$OUT/dockerd.log" | tr '\n' ' ')"
    fi
    record "engine: dockerd started, \`docker info\` answers" "$(since "$t")"
  fi
  if ! COMPOSE=$(find_compose); then
    can_install || skip "the engine runs but neither \`docker compose\` (v2) nor \`docker-compose\` (v1) works against it, and this machine cannot install one"
    apt_install docker-compose || skip "no compose command works and \`apt-get install docker-compose\` failed"
    COMPOSE=$(find_compose) || skip "no compose command works against the engine, even after installing docker-compose"
  fi
  say "compose command: $COMPOSE ($($COMPOSE version --short 2>/dev/null || $COMPOSE version | head -1))"
}

# ---- images ----------------------------------------------------------------------------------

base_images() {
  if ! docker image inspect python:3.11-slim >/dev/null 2>&1 && ! command -v debootstrap >/dev/null && can_install; then
    apt_install debootstrap || true  # offline-images.sh says what is missing if it is still needed
  fi
  bash scripts/offline-images.sh
}

mb() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

build_worker() {
  local t
  t=$(date +%s.%N)
  docker build --force-rm --network host -t "$IMAGE" . >"$OUT/worker-build.log" 2>&1 \
    || { tail -30 "$OUT/worker-build.log"; fail "docker build of $IMAGE (log: $OUT/worker-build.log)"; return 1; }
  say "worker image $IMAGE: built in $(since "$t") s (docker's layer cache counts), size $(mb "$IMAGE")"
  say "  of which the base image python:3.11-slim is $(mb python:3.11-slim) and the largest own layer (/opt/venv) $(docker history --format '{{.Size}}' "$IMAGE" | head -n -1 | sort -h | tail -1)"
}

check_worker_image() {
  local user health stopsig tools
  user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
  health=$(docker image inspect -f '{{if .Config.Healthcheck}}{{join .Config.Healthcheck.Test " "}}{{end}}' "$IMAGE")
  stopsig=$(docker image inspect -f '{{.Config.StopSignal}}' "$IMAGE")
  [[ -n $user && $user != root && $user != 0 ]] || { fail "the image runs as root (USER '$user')"; return 1; }
  [[ $(docker run --rm --entrypoint id "$IMAGE" -u) != 0 ]] || { fail "the image's user has uid 0"; return 1; }
  [[ $health == *"/health/"* ]] || { fail "no HEALTHCHECK on /health/* in the image ('$health')"; return 1; }
  [[ $stopsig == SIGTERM ]] || { fail "STOPSIGNAL is '$stopsig'"; return 1; }
  tools=$(docker run --rm --entrypoint sh "$IMAGE" -c 'for t in gcc cc c++ g++ make ld as; do command -v $t; done; true')
  [[ -z $tools ]] || { fail "build tools in the final image: $tools"; return 1; }
  say "worker image: user $user (uid $(docker run --rm --entrypoint id "$IMAGE" -u)), STOPSIGNAL $stopsig, HEALTHCHECK on /health/live, no compiler/make/binutils"
}

# ---- stack -----------------------------------------------------------------------------------

dc() { $COMPOSE_BASE "$@"; }
cid() { dc ps -q "$1" | head -1; }
cids() { dc ps -q "$1"; }
state() { docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null || echo gone; }
host_ingest() { KAFKA_BOOTSTRAP_SERVERS=$HOST_BOOTSTRAP TOPIC_PREFIX= APP_ID=news-ingest "$BIN/ingest" "$@"; }

# wait_healthy <container> <what> [timeout s]
wait_healthy() {
  local c=$1 what=$2 limit=${3:-180} s=""
  for _ in $(seq 1 "$limit"); do
    s=$(state "$c")
    case "$s" in
      "running healthy") return 0 ;;
      *unhealthy|exited*|dead*|gone) break ;;
    esac
    sleep 1
  done
  fail "$what did not become healthy (state: $s)"
}

# The worker's /health/ready (partitions assigned, tables recovered), asked inside its container.
ready_json() {
  docker exec "$1" python -c "import json,urllib.request,urllib.error
try: r = urllib.request.urlopen('http://127.0.0.1:6066/health/ready', timeout=3); print(r.read().decode())
except urllib.error.HTTPError as e: print(e.read().decode())
except Exception as e: print('{\"ready\": false, \"error\": \"%s\"}' % e)" 2>/dev/null || echo '{"ready": false}'
}

is_ready() { [[ $(ready_json "$1" | tr -d ' ') == *'"ready":true'* ]]; }

wait_workers() {  # wait_workers <n>: n worker containers, each healthy and ready
  local n=$1 ids id
  for _ in $(seq 1 90); do
    ids=$(cids worker)
    [[ $(echo "$ids" | grep -c .) == "$n" ]] && break
    sleep 1
  done
  [[ $(echo "$ids" | grep -c .) == "$n" ]] || { fail "expected $n worker containers, found: $ids"; return 1; }
  for id in $ids; do
    wait_healthy "$id" "worker ${id:0:12}" 180 || return 1
    for _ in $(seq 1 120); do
      is_ready "$id" && break
      sleep 1
    done
    is_ready "$id" || { fail "worker ${id:0:12} never ready: $(ready_json "$id")"; return 1; }
    say "  worker ${id:0:12}: $(state "$id"), /health/ready $(ready_json "$id")"
  done
}

# verdicts <jsonl file> [expect: total unique exact near]: prints one line per article, checks counts.
verdicts() {
  "$BIN/python" - "$@" <<'EOF'
import json, sys
path, expect = sys.argv[1], [int(x) for x in sys.argv[2:]]
rows = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
ids = {r["id"] for r in rows}
count = {s: sum(r["dedup"]["status"] == s for r in rows) for s in ("unique", "exact_duplicate", "near_duplicate")}
for r in rows:
    d = r["dedup"]
    print(f"    {r['id']}  {r['language']['code']}  {d['status']:<15} {('of ' + d['duplicate_of']) if d['duplicate_of'] else '':<32} "
          f"{len(r.get('entities') or [])} entities  {(r.get('title') or '')[:50]}")
print(f"    {len(rows)} records, {len(ids)} ids: {count}")
if expect:
    got = [len(rows), count["unique"], count["exact_duplicate"], count["near_duplicate"]]
    if got != expect or len(ids) != len(rows):
        sys.exit(f"    expected total/unique/exact/near {expect}, got {got} ({len(ids)} distinct ids)")
EOF
}

# poll_topic <outfile> <want> <timeout s> <consume command...>: re-run a --follow --timeout consume
# until it returns <want> records (or more) or time runs out.
poll_topic() {
  local outfile=$1 want=$2 limit=$3 deadline n
  shift 3
  deadline=$(( $(date +%s) + limit ))
  while :; do
    "$@" >"$outfile" 2>"$outfile.err" || true
    n=$(grep -c '^{' "$outfile" || true)
    [[ $n -ge $want || $(date +%s) -ge $deadline ]] && break
    sleep 2
  done
}

stack_up() {
  dc up -d >"$OUT/up.log" 2>&1 || { cat "$OUT/up.log"; fail "\`up -d\` failed"; return 1; }
}

kafka_healthy() {
  wait_healthy "$(cid kafka)" kafka 180 || return 1
  local c
  c=$(cid kafka)
  say "  kafka ${c:0:12}: $(state "$c") ($(docker inspect -f '{{.Config.Image}}' "$c"); /var/lib/kafka/data on volume $(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/var/lib/kafka/data"}}{{.Name}}{{end}}{{end}}' "$c"))"
}

topics_created() {
  local c rc
  c=$(dc ps -a -q topics-init | head -1)
  for _ in $(seq 1 120); do
    [[ $(docker inspect -f '{{.State.Status}}' "$c") == exited ]] && break
    sleep 1
  done
  rc=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$c")
  [[ $rc == "exited 0" ]] || { docker logs "$c" 2>&1 | tail -20; fail "topics-init: $rc"; return 1; }
  host_ingest topics check >"$OUT/topics-check.log" 2>&1 || { cat "$OUT/topics-check.log"; fail "\`ingest topics check\` from the host"; return 1; }
  say "  topics-init exited 0; \`ingest topics check\` from the host via $HOST_BOOTSTRAP: ok"
}

seeder_profile() {
  dc --profile seed run --rm -T seeder >"$OUT/seeder.log" 2>&1 || { cat "$OUT/seeder.log"; fail "seeder profile"; return 1; }
  sed 's/^/    /' "$OUT/seeder.log" | tail -6
}

consumer_profile() {
  poll_topic "$OUT/consumer.jsonl" 5 120 \
    $COMPOSE_BASE --profile consume run --rm -T consumer ingest consume --from-beginning --follow --timeout 8 --format jsonl
  verdicts "$OUT/consumer.jsonl" 5 5 0 0 || { tail -5 "$OUT/consumer.jsonl.err"; fail "the consumer profile did not print the 5 enriched seeds"; return 1; }
}

scale_two() {
  dc up -d --scale worker=2 >"$OUT/scale.log" 2>&1 || { cat "$OUT/scale.log"; fail "--scale worker=2"; return 1; }
  wait_workers 2
}

host_replay() {  # host_replay <expected exact_duplicate in total>
  host_ingest seed --new-ids seeds/ >"$OUT/replay.log" 2>&1 || { cat "$OUT/replay.log"; fail "\`ingest seed --new-ids seeds/\` from the host"; return 1; }
  sed 's/^/    /' "$OUT/replay.log" | tail -3
  poll_topic "$OUT/duplicates.jsonl" "$1" 120 \
    host_ingest consume --from-beginning --follow --timeout 6 --status exact_duplicate --format jsonl
  verdicts "$OUT/duplicates.jsonl" "$1" 0 "$1" 0 || { fail "expected $1 exact_duplicate verdicts on articles.enriched"; return 1; }
  "$BIN/python" - "$OUT/consumer.jsonl" "$OUT/duplicates.jsonl" <<'EOF' || { fail "a duplicate does not point at a seed"; return 1; }
import json, sys
seeds = {json.loads(l)["id"] for l in open(sys.argv[1]) if l.startswith("{")}
dups = [json.loads(l)["dedup"] for l in open(sys.argv[2]) if l.startswith("{")]
cluster = {d["cluster_id"] for d in dups}
assert all(d["duplicate_of"] in seeds or d["cluster_id"] in seeds for d in dups), (seeds, dups)
print(f"    every exact_duplicate points at one of the 5 seeds ({len(cluster)} clusters)")
EOF
}

stop_workers() {
  local t stop_s id rc
  t=$(date +%s.%N)
  dc stop worker >"$OUT/stop.log" 2>&1 || { cat "$OUT/stop.log"; fail "stop worker"; return 1; }
  stop_s=$(since "$t")
  say "  \`stop worker\` (2 containers, in parallel): $stop_s s; grace period ${GRACE_S} s"
  awk -v s="$stop_s" -v g="$GRACE_S" 'BEGIN { exit !(s < g) }' || { fail "stopping took $stop_s s, not within the ${GRACE_S} s grace period"; return 1; }
  for id in $(dc ps -a -q worker); do
    rc=$(docker inspect -f '{{.State.ExitCode}}' "$id")
    docker logs "$id" >"$OUT/worker-${id:0:12}.log" 2>&1 || true
    say "  worker ${id:0:12}: exit code $rc; its last log lines: $(sed -n 's/.*"message": "\([^"]*\)".*/\1/p' "$OUT/worker-${id:0:12}.log" | tail -3 | paste -sd '|' -)"
    ! grep -q "shutdown did not finish" "$OUT/worker-${id:0:12}.log" || { fail "worker ${id:0:12} hit its shutdown deadline"; return 1; }
    [[ $rc == 0 ]] || { fail "worker ${id:0:12} exited $rc (0 = a clean shutdown; 75 = past SHUTDOWN_DEADLINE_S; 137 = SIGKILL after the grace period)"; return 1; }
  done
}

recreate_kafka() {
  dc rm -s -f -v kafka >"$OUT/rm-kafka.log" 2>&1 || { cat "$OUT/rm-kafka.log"; fail "rm -s -f -v kafka"; return 1; }
  dc up -d --no-deps kafka >"$OUT/up-kafka.log" 2>&1 || { cat "$OUT/up-kafka.log"; fail "up -d --no-deps kafka"; return 1; }
  kafka_healthy || return 1
  host_ingest topics check >"$OUT/topics-check2.log" 2>&1 || { cat "$OUT/topics-check2.log"; fail "the topics are gone after recreating the kafka container"; return 1; }
  say "  new kafka container, same volume: the topics are still there"
}

start_workers() {
  dc start worker >"$OUT/start.log" 2>&1 || { cat "$OUT/start.log"; fail "start worker"; return 1; }
  wait_workers 2
}

state_survived() {
  host_replay 10 || return 1
  poll_topic "$OUT/enriched.jsonl" 15 60 host_ingest consume --from-beginning --follow --timeout 6 --format jsonl
  verdicts "$OUT/enriched.jsonl" 15 5 10 0 >/dev/null || { verdicts "$OUT/enriched.jsonl"; fail "articles.enriched should hold 5 unique + 10 exact_duplicate"; return 1; }
  say "  articles.enriched: 5 unique, 10 exact_duplicate (the second --new-ids replay, after the restarts, is a duplicate too)"
}

# Volumes no other compose project claims (anonymous ones, e.g. from the kafka image's VOLUMEs).
snapshot() {
  docker volume ls --format '{{.Name}} {{.Label "com.docker.compose.project"}}' \
    | awk -v p="$PROJECT" '$2 == "" || $2 == p { print $1 }' | sort
}

stack_down() {
  local left
  dc down -v --remove-orphans >"$OUT/down.log" 2>&1 || { cat "$OUT/down.log"; fail "down -v"; return 1; }
  COMPOSE_BASE=""
  left=$({ docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
           docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"
           docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
           docker ps -aq --filter "name=${PROJECT}"
           docker network ls -q --filter "name=${PROJECT}"
           docker volume ls -q --filter "name=${PROJECT}"; } | sort -u)
  [[ -z $left ]] || { fail "left behind by project $PROJECT: $left"; return 1; }
  left=$(comm -13 "$OUT/before.snapshot" <(snapshot))
  [[ -z $left ]] || { fail "volumes left after down -v that were not there before \`up\` (anonymous?): $left"; return 1; }
  say "  nothing of project $PROJECT is left: no container, network or volume (also none new since before \`up\`)"
}

run_stack() {
  COMPOSE_BASE="$COMPOSE -p $PROJECT -f docker-compose.yml"
  if (exec 3<>/dev/tcp/127.0.0.1/29092) 2>/dev/null; then
    fail "$HOST_BOOTSTRAP is in use (a \`make run\` stack? \`make stop\` it first)"; return 1
  fi
  snapshot >"$OUT/before.snapshot"
  say "compose project $PROJECT ($COMPOSE)"
  step "stack: up -d (kafka, topics-init, worker)" stack_up
  step "stack: kafka healthy" kafka_healthy
  step "stack: topics created" topics_created
  step "stack: worker healthy and ready" wait_workers 1
  step "stack: seeder profile sends seeds/" seeder_profile
  step "stack: consumer profile prints the 5 enriched seeds" consumer_profile
  step "stack: --scale worker=2, both healthy and ready" scale_two
  step "stack: --new-ids replay from the host → 5 exact_duplicate" host_replay 5
  step "stack: stop worker (graceful, within the grace period)" stop_workers
  step "stack: kafka container recreated on its named volume" recreate_kafka
  step "stack: start worker, both healthy and ready" start_workers
  step "stack: another --new-ids replay is still a duplicate" state_survived
  step "stack: down -v leaves no container, network or volume" stack_down
}

# ---- integration through the container path --------------------------------------------------

run_integration() {
  local xml=$OUT/integration-container.xml rc=0
  say "KAFKA_TEST_BROKER=container pytest tests/integration (Kafka: docker-compose.yml's kafka service)"
  env -u KAFKA_BOOTSTRAP_SERVERS KAFKA_TEST_BROKER=container \
    "$BIN/pytest" -q -p no:cacheprovider --junitxml="$xml" tests/integration || rc=$?
  "$BIN/python" - "$xml" <<'EOF' || true
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
s = s if s.tag == "testsuite" else s.find("testsuite")
n, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
print(f"[compose-test] integration tests through the container path: {n - k - f - e} passed, {f} failed, "
      f"{e} errors, {k} skipped, of {n} run ({float(s.get('time', 0)):.0f} s)")
EOF
  return $rc
}

# ---- main ------------------------------------------------------------------------------------

[[ -x $BIN/ingest ]] || { say "no $BIN/ingest: run \`make .venv/.installed\` first (make compose-test does)"; exit 1; }
t=$(date +%s.%N)
ensure_engine   # every phase needs it
[[ -n $STARTED_DOCKERD ]] || record "engine: answers" "$(since "$t")"
if [[ $PHASES == *" images "* ]]; then
  step "images: base images (pull, else the offline stand-ins)" base_images
  step "images: worker image built" build_worker
  step "images: worker image checked (non-root, HEALTHCHECK, no compiler)" check_worker_image
fi
if [[ $PHASES == *" stack "* ]]; then
  run_stack
fi
if [[ $PHASES == *" integration "* ]]; then
  step "integration: tests/integration through the container path" run_integration
fi
