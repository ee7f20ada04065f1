#!/usr/bin/env bash
# `make run`: Kafka → topics → worker (background) → seed seeds/ → show enriched articles.
# `make stop` (this script with "stop"): stop the worker and the broker it started.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUN=.cache/run
mkdir -p "$RUN"

docker_engine() { docker info >/dev/null 2>&1; }

if [[ "${1:-}" == "stop" ]]; then
  if [[ -f $RUN/worker.pid ]] && kill -0 "$(cat $RUN/worker.pid)" 2>/dev/null; then
    kill -TERM "$(cat $RUN/worker.pid)"; echo "worker stopping (pid $(cat $RUN/worker.pid))"
    for _ in $(seq 1 60); do kill -0 "$(cat $RUN/worker.pid)" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f $RUN/worker.pid
  if [[ -f $RUN/compose ]]; then docker compose down; rm -f $RUN/compose; else $BIN/ingest kafka stop; fi
  exit 0
fi

if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  echo "Using Kafka at $KAFKA_BOOTSTRAP_SERVERS"
elif docker_engine; then
  echo "Docker engine found: starting Kafka with docker compose"
  docker compose up -d --wait kafka && touch $RUN/compose
  export KAFKA_BOOTSTRAP_SERVERS=localhost:9092
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
