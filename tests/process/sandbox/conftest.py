"""A sandbox cluster per test, served in-process on 127.0.0.1 with a free port."""
from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Callable

import pytest
from sandbox_harness import RunningSandbox, start_sandbox, wait_until

from okera_auth.sandbox.kubelet import is_ready
from okera_auth.sandbox.resources import PODS
from okera_auth.sandbox.statedir import StateDir, init_sandbox


@pytest.fixture
def state_dir(tmp_path) -> StateDir:
    state = StateDir(str(tmp_path / "sandbox"))
    init_sandbox(state, token_ttl=2 * 86400)
    return state


@pytest.fixture
def sandbox(state_dir):
    running = start_sandbox(state_dir)
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture
def ready_sandbox(sandbox) -> RunningSandbox:
    """A sandbox whose five Okera pods are all ready."""
    wait_until(lambda: len([pod for pod in sandbox.store.objects(PODS) if is_ready(pod)]) == 5,
               what="five ready pods")
    return sandbox


@pytest.fixture
def kubectl_binary() -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed: the kubectl tests did not run")
    return binary


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    def run(*args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "okera_auth.sandbox"] + list(args), capture_output=True,
                              text=True, check=check, timeout=timeout)
    return run
