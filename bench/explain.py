#!/usr/bin/env python
"""The price of a heatmap: a prediction with ``explain=true`` beside the same prediction without it,
in one run, on the real ``manage.py serve`` process, over keep-alive HTTP.

    PORTAL_SHARED=/work/shared .venv/bin/python bench/explain.py [--quick | --smoke]

The model and the clients are bench/serving.py's: small_cnn 128x128x1 registered as the production
version of ``screws`` in a throwaway database, screw PNGs (1024x1024, ~400 KB) sent one per request
with a project token. Each level (concurrency 1, then 4) alternates rounds without and with
``?explain=true`` (the same files, the same connections), so both see the same machine; the figure is
the median latency of all rounds. With ``explain`` the server also runs Grad-CAM (the model's
features and their gradient for the predicted class) and paints a 256x256 PNG, returned as a data
URI in the answer. Goal: a prediction with its heatmap takes at most twice as long (p50, c=1).
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from serving import free_port, load_files, register_model, setup_django, start_server, stop_server  # noqa: E402

GOAL = 2.0


def round_trip(port, slug, key, files, concurrency, n_each, explain):
    """``concurrency`` keep-alive clients posting ``n_each`` images each; latencies in ms."""
    path = f"/api/v1/projects/{slug}/serving/models/screws/predict/" + ("?explain=true" if explain else "")
    latencies, errors = [], []
    lock = threading.Lock()

    def client(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for k in range(n_each):
            body = files[(i + k * concurrency) % len(files)]
            t0 = time.perf_counter()
            conn.request(
                "POST",
                path,
                body=body,
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "image/png",
                    "Content-Length": str(len(body)),
                },
            )
            resp = conn.getresponse()
            data = resp.read()
            dt = (time.perf_counter() - t0) * 1000
            answer = json.loads(data) if resp.status == 200 else None
            if answer is None or ("heatmap" in answer["predictions"][0]) != explain:
                errors.append((resp.status, data[:200]))
                continue
            with lock:
                latencies.append(dt)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} bad answers; first: {errors[0]}")
    return latencies


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (< 5 min)")
    ap.add_argument("--smoke", action="store_true", help="a few requests (< 1 min, CI)")
    args = ap.parse_args()
    n_files, rounds, n_each = (4, 2, 4) if args.smoke else (32, 4, 16) if args.quick else (64, 8, 32)
    tmp = Path(tempfile.mkdtemp(prefix="explain-bench-"))
    setup_django(tmp)
    files = load_files(n_files)
    project, _mv, key = register_model(tmp)
    print(
        f"{len(files)} screw PNGs, small_cnn 128x128x1, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    port = free_port()
    proc = start_server(port, tmp, log_on=True)
    out = {}
    try:
        round_trip(port, project.slug, key, files, 2, 4, False)  # warm-up: load, trace
        round_trip(port, project.slug, key, files, 2, 4, True)
        for c in (1, 4):
            plain, explained = [], []
            for _ in range(rounds):
                plain += round_trip(port, project.slug, key, files, c, n_each, False)
                explained += round_trip(port, project.slug, key, files, c, n_each, True)
            p50, e50 = statistics.median(plain), statistics.median(explained)
            out[c] = (p50, e50)
            print(
                f"c={c}: without explain p50 {p50:7.1f} ms, with explain p50 {e50:7.1f} ms, ratio {e50 / p50:.2f} "
                f"({len(plain)} + {len(explained)} requests)",
                flush=True,
            )
    finally:
        stop_server(proc)
    p50, e50 = out[1]
    print(f"load average now {os.getloadavg()[0]:.1f}")
    print(f"RESULT explain explain_p50_ms_c1={e50:.1f} plain_p50_ms_c1={p50:.1f} ratio={e50 / p50:.2f} goal=<={GOAL}")


if __name__ == "__main__":
    main()
