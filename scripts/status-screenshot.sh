#!/usr/bin/env bash
# `make screenshots`: docs/status.png, the status page after the seeds, a copy of one, a hostile
# title and a message that is not JSON. Runs its own local broker, topics and worker (names of its
# own), and stops them again; needs chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${1:-docs/status.png}
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n "$BROWSER" ]] || { echo "ERROR: no chromium on PATH (apt-get install chromium)" >&2; exit 1; }

name=screenshot-$$
work=$(mktemp -d)
free_port() { $BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
web_port=$(free_port)
worker_pid=""
cleanup() {
  [[ -n "$worker_pid" ]] && kill -TERM "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  $BIN/ingest kafka stop --name "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bootstrap=$($BIN/ingest kafka start --name "$name" | sed -n 's/^export KAFKA_BOOTSTRAP_SERVERS=//p')
export KAFKA_BOOTSTRAP_SERVERS=$bootstrap TOPIC_PREFIX=shot. APP_ID=shot-$$ WEB_PORT=$web_port DATA_DIR=$work/faust
$BIN/ingest topics create >/dev/null
$BIN/ingest worker >"$work/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 1 120); do
  $BIN/python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$web_port/health/ready', timeout=1)" 2>/dev/null && break
  sleep 0.5
done
$BIN/ingest seed seeds >/dev/null 2>&1
$BIN/ingest seed seeds/003_* --new-ids >/dev/null 2>&1
$BIN/python - <<'PY'
import asyncio, os, orjson
from aiokafka import AIOKafkaProducer
async def main():
    producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    hostile = {"id": "hostile-1", "title": "<script>alert(1)</script> a hostile title", "source": "test",
               "body": "The harbour office published next month's tide tables for the coast. " * 8}
    await producer.send_and_wait("shot.articles.raw", orjson.dumps(hostile), key=b"hostile-1")
    await producer.send_and_wait("shot.articles.raw", b"{not json", key=b"bad-1")
    await producer.stop()
asyncio.run(main())
PY
sleep 4  # the board fills as the outputs go out
"$BROWSER" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
  --user-data-dir="$work/chromium" --window-size=1400,1250 --virtual-time-budget=4000 \
  --screenshot="$OUT" "http://127.0.0.1:$web_port/status" 2>/dev/null
echo "wrote $OUT"
