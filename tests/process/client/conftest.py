"""Fixtures of the okera-token tests: a real okera-authserver process, the okera-token command,
and a relay that hands the server's answer over only after the token file is gone."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from authserver_process import Daemon
from loopback_peer import LoopbackPeer
from okera_auth.client import forget_tokens
from okera_auth.module_utils.keys import load_public_keys
from okera_auth.module_utils.tokens import verify

CLIENT_USER = "janedoe"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HoldingProxy(LoopbackPeer):
    """A TCP relay to a server. While ``hold`` is set it passes an answer on only once the
    token file the answer names is gone: the client then surely reads too late."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hold = False
        super().__init__()

    def answer(self, connection: socket.socket, request: bytes) -> None:
        with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            upstream.sendall(request)
            answer = b""
            while True:  # the client asks with Connection: close, so the server closes
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                answer += chunk
        if self.hold:
            path = answer.split(b"\r\n\r\n", 1)[1].decode().strip()
            deadline = time.monotonic() + 15
            while os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.02)
        connection.sendall(answer)


@pytest.fixture
def client_user() -> str:
    """The current user of okera-token runs (USER and LOGNAME in client_env)."""
    return CLIENT_USER


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nothing listens on."""
    return "http://127.0.0.1:%d" % free_port()


@pytest.fixture(autouse=True)
def fresh_client_memory():
    """get_token() remembers tokens per server for the whole process; tests start afresh."""
    forget_tokens()
    yield
    forget_tokens()


@pytest.fixture
def signing_key(key_dir) -> Path:
    return key_dir / "private.pem"


@pytest.fixture
def check_token(key_dir):
    """check_token(token) -> VerificationResult with the servers' public key (RS512)."""
    keys = load_public_keys((key_dir / "public.pem").read_bytes())
    return lambda token: verify(token, keys, ["RS512"])


@pytest.fixture
def open_dir():
    """A short directory other uids can traverse (Unix socket paths are short; tmp_path is
    0700 and long)."""
    directory = Path(tempfile.mkdtemp(prefix="okt-"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def start_authserver(signing_key, tmp_path):
    """start_authserver(*args, tcp=True, port=0, workdir=None) -> a running Daemon, killed
    at teardown."""
    started: List[Daemon] = []

    def start(*args: str, tcp: bool = True, port: int = 0,
              workdir: Optional[Path] = None) -> Daemon:
        server = Daemon(workdir or tmp_path / "server", signing_key,
                        (["-p", str(port)] if tcp and port else []) + list(args), tcp=tcp)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def holding_proxy():
    """holding_proxy(server) -> a HoldingProxy in front of the server's TCP port."""
    proxies: List[HoldingProxy] = []

    def start(server: Daemon) -> HoldingProxy:
        proxy = HoldingProxy(server.port)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def client_home(tmp_path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def client_env(client_home) -> Dict[str, str]:
    """The client's environment: its own HOME, user janedoe, no auth-server variables."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("OKERA_AUTHSERVER_") and name != "XDG_CACHE_HOME"}
    environment.update(HOME=str(client_home), USER=CLIENT_USER, LOGNAME=CLIENT_USER)
    return environment


def okera_token_command() -> List[str]:
    """The installed command (pip install -e .), else the same entry point as a module."""
    script = Path(sys.executable).parent / "okera-token"
    return [str(script)] if script.exists() else [sys.executable, "-m", "okera_auth.client"]


@pytest.fixture
def run_okera_token(client_env):
    """run_okera_token(*args, env=None, stdin_text=None) -> CompletedProcess (text)."""

    def run(*args: str, env: Optional[Dict[str, str]] = None, stdin_text: Optional[str] = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess:
        environment = dict(client_env)
        environment.update(env or {})
        stdin = {"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run(okera_token_command() + list(args), capture_output=True, text=True,
                              env=environment, timeout=timeout, check=False, **stdin)

    return run
