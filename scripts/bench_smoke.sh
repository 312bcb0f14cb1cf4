#!/usr/bin/env bash
# Every benchmark that has a --smoke mode, run once so that none of them rots: a crash fails CI.
# (Figures from smoke runs are not recorded; docs/benchmarks.md holds the real runs.)
set -euo pipefail
cd "$(dirname "$0")/.."
export PORTAL_SHARED=${PORTAL_SHARED:-$PWD/../shared}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
status=0
for bench in bench/*.py; do
  grep -q -- '"--smoke"' "$bench" || continue
  echo "== $bench --smoke"
  # the benches make their own throwaway databases; the CI's DATABASE_URL is not theirs to touch
  if ! env -u DATABASE_URL -u CELERY_BROKER_URL -u CACHE_URL .venv/bin/python "$bench" --smoke >"/tmp/bench-smoke-$(basename "$bench").log" 2>&1; then
    echo "FAILED: $bench --smoke"; tail -20 "/tmp/bench-smoke-$(basename "$bench").log"; status=1
  else
    tail -1 "/tmp/bench-smoke-$(basename "$bench").log"
  fi
done
exit $status
