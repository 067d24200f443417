"""Helpers of the sandbox tests: an in-process server, waiting, the command line, kubectl."""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Callable, List

from okera_auth.sandbox.faults import FaultInjector
from okera_auth.sandbox.server import SandboxServer
from okera_auth.sandbox.statedir import Settings, StateDir
from okera_auth.sandbox.store import Store
from okera_auth.sandbox.pki import server_context


@dataclass
class RunningSandbox:
    state: StateDir
    settings: Settings
    server: SandboxServer
    store: Store
    kubeconfig: str

    @property
    def url(self) -> str:
        return self.server.url


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


def start_sandbox(state: StateDir, tls: bool = True) -> RunningSandbox:
    settings = state.settings()
    context = server_context(*state.ensure_certificates()) if tls else None
    store = state.store()
    server = SandboxServer(store, state.users(settings), ssl_context=context, start_delay=0.2,
                           crash_backoff=0.5, tick=0.05, namespace=settings.namespace,
                           faults=FaultInjector(state.faults))
    kubeconfig = state.write_kubeconfig(settings, server.url)
    server.start()
    return RunningSandbox(state, settings, server, store, kubeconfig)


def kubectl_runner(binary: str, kubeconfig: str) -> Callable[..., subprocess.CompletedProcess]:
    def run(*args: str, context: str = None, timeout: float = 30) -> subprocess.CompletedProcess:
        command: List[str] = [binary, "--kubeconfig", kubeconfig]
        if context:
            command += ["--context", context]
        return subprocess.run(command + list(args), capture_output=True, text=True, timeout=timeout, check=False)
    return run
