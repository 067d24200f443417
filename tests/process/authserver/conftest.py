"""Fixtures of the okera-authserver tests: keys made by ssh-keygen, a real server process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from authserver_process import Daemon, ssh_keygen


@pytest.fixture(scope="session")
def pem_key(tmp_path_factory) -> Path:
    """The tutorial's key: ssh-keygen -b 2048 -t rsa -m PEM."""
    return ssh_keygen(tmp_path_factory.mktemp("pem_key"), "-b", "2048", "-t", "rsa", "-m", "PEM")


@pytest.fixture(scope="session")
def openssh_key(tmp_path_factory) -> Path:
    """ssh-keygen's own (OpenSSH) private key format, RSA."""
    return ssh_keygen(tmp_path_factory.mktemp("openssh_key"), "-b", "2048", "-t", "rsa")


@pytest.fixture(scope="session")
def second_pem_key(tmp_path_factory) -> Path:
    return ssh_keygen(tmp_path_factory.mktemp("second_key"), "-b", "2048", "-t", "rsa", "-m", "PEM")


@pytest.fixture
def start_daemon(pem_key, tmp_path):
    """start_daemon(*args, key=, env=, tcp=, workdir=, run_as=, preexec_fn=) -> a running
    Daemon, killed at teardown."""
    started: List[Daemon] = []

    def start(*args: str, key: Optional[Path] = pem_key, env: Optional[Dict[str, str]] = None,
              tcp: bool = True, workdir: Optional[Path] = None,
              run_as: Optional[Tuple[int, int, List[int]]] = None,
              preexec_fn: Optional[Callable[[], None]] = None) -> Daemon:
        daemon = Daemon(workdir or tmp_path, key, list(args), env, tcp, run_as, preexec_fn)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def run_authserver():
    """run_authserver(*args, env=...) -> CompletedProcess of a server expected to exit."""

    def run(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 30.0):
        environment = dict(os.environ)
        environment.update(env or {})
        return subprocess.run([sys.executable, "-m", "okera_auth.authserver", *args],
                              capture_output=True, text=True, env=environment, timeout=timeout,
                              check=False)

    return run
