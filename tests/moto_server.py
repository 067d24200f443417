"""moto's server as a real local AWS API for tests: a process on 127.0.0.1, driven by boto3.

The code under test talks to it over HTTP with ``endpoint_url`` (the amazon.aws plugins, our
S3 module, the daemon), exactly as it would talk to AWS; nothing is patched into it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional

REGION = "us-east-1"
# moto accepts any credentials; these are what the tests and the playbooks give.
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MotoServer:
    """One ``python -m moto.server`` process on a free port of 127.0.0.1."""

    def __init__(self, log_path: Path) -> None:
        self.port = _free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self._log = open(log_path, "wb")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ, **self.environment()))
        self._wait_until_serving(log_path)

    def _wait_until_serving(self, log_path: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("moto's server exited with %s: %s" % (self.process.returncode, log_path.read_text()[-2000:]))
            try:
                with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not answer on %s within %g s" % (self.url, timeout)) from None
                time.sleep(0.1)

    def environment(self) -> Dict[str, str]:
        """Variables for boto3 and ansible-playbook: dummy credentials and a region, no real AWS profile."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY)

    def reset(self) -> None:
        """Forget every bucket and secret (between tests)."""
        request = urllib.request.Request(self.url + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self, timeout: Optional[float] = 10.0) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
