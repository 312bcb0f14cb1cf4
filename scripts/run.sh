#!/usr/bin/env bash
# `make run`: the embedded default. SQLite file, a Celery broker that needs no server (filesystem),
# media on local disk, one worker (with beat inside it) started alongside the web server.
# Safe to run again: migrations and the seed find what an earlier run made.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORTAL_ENV=${PORTAL_ENV:-dev}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p var

$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput >/dev/null

# A worker left over from an earlier run is stopped first, so there is exactly one.
if [ -f var/worker.pid ] && kill -0 "$(cat var/worker.pid)" 2>/dev/null; then
  kill "$(cat var/worker.pid)" || true
  sleep 2
fi
rm -f var/worker.pid
$PY -m celery -A mlportal worker -B -Q default,ingest,profile,training -c 1 -n "worker1@%h" \
  --loglevel INFO --logfile var/worker.log --pidfile var/worker.pid \
  --schedule var/celerybeat-schedule &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT INT TERM

$PY manage.py seed_demo
echo
echo "ML Portal is starting at http://$HOST:$PORT/  (worker log: var/worker.log; Ctrl-C stops both)"
echo "API docs: http://$HOST:$PORT/api/docs/   health: /healthz  readiness: /readyz"
$PY manage.py runserver "$HOST:$PORT" --noreload
