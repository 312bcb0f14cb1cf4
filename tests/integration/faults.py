"""Helpers for the fault tests: a Redis server and a web server of the test's own (subprocesses on
free ports, in folders under /tmp/faults-*), and plain HTTP calls that never raise on a status.

The shared services (PostgreSQL on 5432, Redis on 6379) are never stopped or touched here: a test
that needs a broker or a database to die starts its own."""

import http.client as http_client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def temp_dir(kind):
    return Path(tempfile.mkdtemp(prefix=f"faults-{kind}-", dir="/tmp"))


class OwnRedis:
    """``redis-server`` on a free port with no persistence; stop() and start() it at will."""

    def __init__(self):
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed")
        self.port, self.dir, self.proc = free_port(), temp_dir("redis"), None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=open(self.dir / "redis.log", "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: port_open(self.port), 20, f"redis-server on port {self.port}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        wait_until(lambda: not port_open(self.port), 10, "redis-server to stop")

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class WebServer:
    """The portal under gunicorn (one process, threads: persistent database connections, as in
    production) with the given environment on top of the test's."""

    def __init__(self, env, log_dir):
        self.port, self.env, self.proc = free_port(), env, None
        self.log = Path(log_dir) / f"gunicorn-{self.port}.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        env = {**os.environ, "PORTAL_ENV": "test", "DEBUG": "false", "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "mlportal.wsgi:application",
                "-b",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "6",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(
                lambda: self.proc.poll() is not None or http("GET", self.url + "/healthz")[0] == 200,
                60,
                "the web server",
            )
        except AssertionError:
            raise AssertionError("the web server did not start:\n" + self.output()) from None
        if self.proc.poll() is not None:
            raise AssertionError("the web server exited:\n" + self.output())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def output(self):
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def http(method, url, *, headers=None, data=None, json_body=None, timeout=30):
    """(status, headers, body bytes); never raises on an HTTP status, and follows no redirect;
    status 0 when no answer came at all.
    ``headers`` is an http.client.HTTPMessage (``get_all("Set-Cookie")``)."""
    headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
    except (urllib.error.URLError, OSError) as exc:  # no answer at all (refused, reset, timed out): status 0
        return 0, http_client.HTTPMessage(), str(exc).encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def multipart(fields, files):
    """(body, content type) for form fields {name: value} and files [(field, filename, bytes)]."""
    boundary = "faults-" + os.urandom(8).hex()
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for field, filename, data in files:
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def cookies_set(headers):
    """{name: value} of the Set-Cookie headers of a response."""
    out = {}
    for line in headers.get_all("Set-Cookie") or []:
        name, _, rest = line.partition("=")
        out[name.strip()] = rest.split(";", 1)[0]
    return out


def cookie_header(cookies):
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


class OwnPostgres:
    """A PostgreSQL cluster of the test's own: initdb into /tmp/faults-pg-*/data (that folder alone
    is handed to the postgres user when running as root), pg_ctl on a free port. stop() / start()
    it at will; close() stops it and deletes the folder."""

    def __init__(self):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin, self.port, self.dir = bins[-1].parent, free_port(), temp_dir("pg")
        self.data = self.dir / "data"
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        if self.as_postgres:
            shutil.chown(self.dir, user="postgres")

    def _run(self, *cmd):
        cmd = [str(self.bin / cmd[0]), *cmd[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, cwd="/tmp", capture_output=True, text=True, timeout=60)
        if out.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {out.stdout}{out.stderr}")
        return out.stdout

    def init(self):
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        return self.start()

    def start(self):
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        return self

    def stop(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, name):
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def close(self):
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
