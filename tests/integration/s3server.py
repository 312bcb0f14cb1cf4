"""A real S3 API on loopback: moto's server mode (``moto_server``, pinned in requirements.txt) in a
process of its own on a free port, a bucket made with boto3, and the portal's settings for it
(STORAGE_BACKEND=s3: django-storages' S3Storage, as in production with any S3-compatible store)."""

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from .faults import free_port, port_open, temp_dir, wait_until

KEY, SECRET, REGION = "portal-test", "portal-test-secret", "us-east-1"


class S3Server:
    def __init__(self):
        exe = Path(sys.executable).with_name("moto_server")
        if not exe.exists() and not shutil.which("moto_server"):
            raise RuntimeError("moto_server is not installed (pip install 'moto[server]', see requirements.txt)")
        self.exe = str(exe if exe.exists() else shutil.which("moto_server"))
        self.port, self.dir, self.proc = free_port(), temp_dir("s3"), None
        self.bucket = f"portal-{uuid.uuid4().hex[:10]}"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            [self.exe, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=open(self.dir / "moto.log", "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET},
        )
        wait_until(lambda: port_open(self.port), 60, f"moto_server on port {self.port}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        wait_until(lambda: not port_open(self.port), 10, "moto_server to stop")

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION
        )

    def make_bucket(self):
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def keys(self):
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(o["Key"] for p in pages for o in p.get("Contents", []))

    def env(self):
        """What a worker or server process needs to use this store (as docs/operations.md says)."""
        return {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": self.bucket,
            "S3_ENDPOINT_URL": self.url,
            "S3_ACCESS_KEY_ID": KEY,
            "S3_SECRET_ACCESS_KEY": SECRET,
            "S3_REGION": REGION,
        }

    def storages(self, current):
        """settings.STORAGES with the default storage on this server (what STORAGE_BACKEND=s3 gives)."""
        return {
            **current,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": self.bucket,
                    "endpoint_url": self.url,
                    "access_key": KEY,
                    "secret_key": SECRET,
                    "region_name": REGION,
                    "default_acl": None,
                    "querystring_auth": True,
                },
            },
        }
