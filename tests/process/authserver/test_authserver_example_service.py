"""The tutorial's example service, ported (python -m okera_auth.examples.myservice), end to end:
curl with HTTP Basic credentials -> the service -> a token from the real okera-authserver ->
GET /api/databases of a REST stub that checks the token's signature with the public key.

The stub stands in for Okera's REST API until the sandbox cluster serves it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import bcrypt
import pytest

from authserver_process import public_pem
from okera_rest_stub import OkeraRestStub

LISTENING = re.compile(r"Listening on http://127\.0\.0\.1:(\d+) ")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")

pytestmark = pytest.mark.skipif(not shutil.which("curl"), reason="the tutorial calls the service with curl")


class Service:
    """One myservice process on a free port; its log (stderr) goes to a file."""

    def __init__(self, workdir: Path, args: List[str], env: Dict[str, str]) -> None:
        self.log_path = workdir / "myservice.log"
        environment = {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}
        environment.update(env)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "okera_auth.examples.myservice", "--port", "0", *args],
                env=environment, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 20
        while not LISTENING.search(self.log()):
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        self.port = int(LISTENING.search(self.log()).group(1))

    def log(self) -> str:
        return self.log_path.read_text()

    def curl(self, credentials: Optional[str] = "test:test") -> "tuple[int, dict, Dict[str, str]]":
        """What the tutorial runs, curl http://test:test@localhost:5010: (status, JSON body, headers)."""
        userinfo = credentials + "@" if credentials is not None else ""
        done = subprocess.run(["curl", "-s", "--noproxy", "*", "-D", "-",
                               "http://%s127.0.0.1:%d/" % (userinfo, self.port)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        head, _blank, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split()[1])
        headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
        return status, json.loads(body), headers

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(20)


@pytest.fixture
def rest_stub(pem_key) -> Iterator[OkeraRestStub]:
    stub = OkeraRestStub(public_pem(pem_key).read_bytes(), databases={"analyst": ["sales", "marketing"]})
    yield stub
    stub.close()


@pytest.fixture
def start_service(tmp_path) -> Iterator:
    started: List[Service] = []

    def start(*args: str, env: Optional[Dict[str, str]] = None) -> Service:
        service = Service(tmp_path, list(args), env or {})
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait(10)


def _authserver_env(daemon) -> Dict[str, str]:
    return {"OKERA_AUTHSERVER_URL": "http://127.0.0.1:%d" % daemon.port}


def test_tutorial_user_gets_the_databases_through_a_verified_token(start_daemon, rest_stub, start_service):
    daemon = start_daemon()
    service = start_service("--rest-url", rest_stub.url, env=_authserver_env(daemon))
    status, body, headers = service.curl("test:test")
    assert (status, body) == (200, ["default", "okera_sample"])
    assert headers["Content-Type"] == "application/json"
    assert rest_stub.callers == ["test"] and rest_stub.rejected == 0
    assert re.search(r"Generated token: .*/test\.\d+\.token", daemon.log())
    assert service.curl("analyst:whatever")[1] == ["sales", "marketing"]
    assert rest_stub.callers == ["test", "analyst"]
    # Go-style log lines, one per answer, naming the user and never a password or a token.
    assert re.search(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d GET / analyst 200$", service.log(), re.M)
    assert "whatever" not in service.log() and "Bearer" not in service.log()
    assert service.stop() == 0


def test_a_remembered_token_is_reused(start_daemon, rest_stub, start_service):
    daemon = start_daemon()
    service = start_service("--rest-url", rest_stub.url, env=_authserver_env(daemon))
    for _attempt in range(3):
        assert service.curl()[0] == 200
    assert daemon.log().count("Generated token:") == 1
    assert rest_stub.callers == ["test"] * 3


def test_no_credentials_is_asked_for_basic_auth(start_daemon, rest_stub, start_service):
    service = start_service("--rest-url", rest_stub.url, env=_authserver_env(start_daemon()))
    status, body, headers = service.curl(None)
    assert status == 401 and "HTTP Basic" in body["error"]
    assert headers["WWW-Authenticate"].startswith('Basic realm="myservice"')
    assert rest_stub.callers == []


def test_a_token_the_cluster_does_not_accept_is_renewed_once_then_502(start_daemon, second_pem_key,
                                                                      start_service, rest_stub):
    daemon = start_daemon(key=second_pem_key)  # not the key the cluster (the stub) trusts
    service = start_service("--rest-url", rest_stub.url, env=_authserver_env(daemon))
    status, body, _headers = service.curl()
    assert status == 502 and "did not accept the token: The token could not be authenticated" in body["error"]
    assert rest_stub.rejected == 2 and rest_stub.callers == []  # forgotten and asked again, once
    assert daemon.log().count("Generated token:") == 2


def test_users_file_checks_passwords(start_daemon, rest_stub, start_service, tmp_path):
    users = tmp_path / "htpasswd"
    users.write_text("# htpasswd -B\ntest:%s\n" % bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode())
    service = start_service("--rest-url", rest_stub.url, "--users-file", str(users),
                            env=_authserver_env(start_daemon()))
    assert service.curl("test:wrong")[0] == 401
    assert service.curl("nobody:s3cret")[0] == 401
    assert service.curl("test:s3cret")[:2] == (200, ["default", "okera_sample"])
    assert rest_stub.callers == ["test"]


def test_auth_server_down_is_503_and_a_bad_user_name_400(start_daemon, rest_stub, start_service, tmp_path):
    daemon = start_daemon()
    service = start_service("--rest-url", rest_stub.url, env=_authserver_env(daemon))
    status, body, _headers = service.curl("..:x")
    assert status == 400 and "refused the request" in body["error"]
    daemon.stop()
    status, body, _headers = service.curl()
    assert status == 503 and "cannot reach the auth server" in body["error"]


def test_start_without_a_rest_url_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "okera_auth.examples.myservice"], capture_output=True, text=True,
                          timeout=60, check=False, env={k: v for k, v in os.environ.items() if k != "OKERA_REST_URL"})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("myservice: no REST API URL given")
