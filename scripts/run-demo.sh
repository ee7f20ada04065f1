#!/usr/bin/env bash
# `make run`: Kafka → topics → worker (background) → seed seeds/ → show enriched articles.
# `make stop` (this script with "stop"): stop the worker and the broker it started (a compose
# stack goes with `down -v`: its containers, network and volumes, the anonymous ones of the kafka
# image's VOLUMEs included, so nothing is left behind).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUN=.cache/run
mkdir -p "$RUN"

docker_engine() { docker info >/dev/null 2>&1; }

# The compose command that works against the running engine: the v2 plugin (`docker compose`),
# else the v1 binary (`docker-compose`). Probed with `ps`, which talks to the engine: a v1 from
# PyPI with docker-py 7 answers `version` but crashes on any engine call. Prints it, or fails.
compose_command() {
  local candidate
  for candidate in "docker compose" "docker-compose"; do
    if $candidate -f docker-compose.yml ps -q >/dev/null 2>&1; then echo "$candidate"; return 0; fi
  done
  echo "ERROR: a Docker engine runs but neither \`docker compose\` (v2 plugin) nor \`docker-compose\` (v1)" >&2
  echo "       works against it. Install one (Debian: apt-get install docker-compose), or stop the engine" >&2
  echo "       to use the local broker, or set KAFKA_BOOTSTRAP_SERVERS to a running cluster." >&2
  return 1
}

# Wait until the compose kafka service's healthcheck passes (v1 has no `up --wait`).
wait_healthy() {
  local compose=$1 id status
  id=$($compose ps -q kafka)
  [[ -n "$id" ]] || { echo "ERROR: no kafka container after \`$compose up -d kafka\`" >&2; return 1; }
  echo -n "waiting for kafka to be healthy "
  for _ in $(seq 1 90); do
    status=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
    case "$status" in
      "running healthy") echo " healthy"; return 0 ;;
      *unhealthy|exited*|dead*) break ;;
    esac
    echo -n "."; sleep 2
  done
  echo; echo "ERROR: kafka did not become healthy (state: $status); its log ends:" >&2
  docker logs --tail 30 "$id" >&2 || true
  return 1
}

if [[ "${1:-}" == "stop" ]]; then
  if [[ -f $RUN/worker.pid ]] && kill -0 "$(cat $RUN/worker.pid)" 2>/dev/null; then
    kill -TERM "$(cat $RUN/worker.pid)"; echo "worker stopping (pid $(cat $RUN/worker.pid))"
    for _ in $(seq 1 60); do kill -0 "$(cat $RUN/worker.pid)" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f $RUN/worker.pid
  if [[ -f $RUN/compose ]]; then
    compose=$(cat $RUN/compose)  # the command `make run` brought the stack up with
    $compose down -v --remove-orphans
    rm -f $RUN/compose
  else
    $BIN/ingest kafka stop
  fi
  exit 0
fi

if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  echo "Using Kafka at $KAFKA_BOOTSTRAP_SERVERS"
elif docker_engine; then
  compose=$(compose_command)
  echo "Docker engine found: starting Kafka with $compose (docker-compose.yml)"
  echo "$compose" > $RUN/compose
  if ! $compose up -d kafka; then
    echo "ERROR: \`$compose up -d kafka\` failed. Without an image registry, build the pinned base images" >&2
    echo "       locally first: bash scripts/offline-images.sh" >&2
    exit 1
  fi
  wait_healthy "$compose"
  export KAFKA_BOOTSTRAP_SERVERS=localhost:29092  # docker-compose.yml publishes HOST://localhost:29092
else
  echo "No Docker engine: starting the local Apache Kafka broker (jars from Maven Central)"
  $BIN/ingest kafka start
  export KAFKA_BOOTSTRAP_SERVERS=$($BIN/ingest kafka status | $BIN/python -c 'import json,sys; print(json.load(sys.stdin)["bootstrap_servers"])')
fi

$BIN/ingest topics create

if [[ -f $RUN/worker.pid ]] && kill -0 "$(cat $RUN/worker.pid)" 2>/dev/null; then
  echo "worker already running (pid $(cat $RUN/worker.pid))"
else
  nohup $BIN/ingest worker -l info > $RUN/worker.log 2>&1 &
  echo $! > $RUN/worker.pid
  echo -n "worker starting (pid $!, log $RUN/worker.log) "
  for _ in $(seq 1 120); do
    if curl -fs "http://127.0.0.1:${WEB_PORT:-6066}/health/ready" >/dev/null 2>&1; then echo " ready"; break; fi
    kill -0 "$(cat $RUN/worker.pid)" 2>/dev/null || { echo " worker died:"; tail -30 $RUN/worker.log; exit 1; }
    echo -n "."; sleep 0.5
  done
fi

$BIN/ingest seed seeds/
echo
echo "Enriched articles (articles.enriched):"
$BIN/ingest consume --from-beginning --follow --timeout 5 --format pretty
echo
echo "The worker keeps running in the background (log: $RUN/worker.log, metrics: http://127.0.0.1:${WEB_PORT:-6066}/metrics)."
echo "Try: $BIN/ingest seed --new-ids seeds/   then   $BIN/ingest consume --from-beginning --status exact_duplicate --format pretty"
echo "Stop everything with: make stop"
