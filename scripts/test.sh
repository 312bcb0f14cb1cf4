#!/usr/bin/env bash
# Runs the whole suite. Browser tests need Chromium (/usr/bin/chromium); integration tests start a
# real Celery worker against whatever broker CELERY_BROKER_URL names (filesystem:// by default).
set -euo pipefail
cd "$(dirname "$0")/.."
export PORTAL_ENV=${PORTAL_ENV:-test}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# Tests keep their SQLite file, broker folder and worker logs apart from the dev portal's.
export PORTAL_VAR_DIR=${PORTAL_VAR_DIR:-$PWD/var/test}
rm -rf "$PORTAL_VAR_DIR/broker"
exec .venv/bin/python -m pytest "$@"
