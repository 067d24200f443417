"""`okera-auth-sandbox serve --podman`: the sandbox runs the pods that are not Okera's for real.

`kubectl apply` of the role's rendered sidecar manifests starts real containers (podman kube
play), `kubectl get pods` and `kubectl logs` show what they do, a crashing image shows
CrashLoopBackOff with its exit code and message, deleting the pod or stopping the sandbox
removes the containers, and the simulated Okera pods stay simulated.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest
import yaml

from podman_harness import Podman, render_sidecar
from sandbox_cluster import Sandbox

KUBECTL = shutil.which("kubectl")
CRASHER = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crasher"},
           "spec": {"containers": [{"name": "daemon", "image": "okera-authserver:0.1.0",
                                    "args": ["--private-key", "/nonexistent.pem"]}]}}


@pytest.fixture(scope="module")
def sandbox(podman, image, tmp_path_factory) -> Iterator[Sandbox]:
    """A sandbox started with --podman, on the tests' own podman storage."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"):
            patch.setenv(name, podman.env[name])
        cluster = Sandbox(tmp_path_factory.mktemp("podman-sandbox") / "state", extra_start=["--podman"])
        try:
            yield cluster
        finally:
            cluster.stop()


def kubectl(sandbox: Sandbox, *args: str, input_text: str = None) -> subprocess.CompletedProcess:
    if KUBECTL is None:
        pytest.fail("kubectl is not installed")
    return subprocess.run([KUBECTL, "--kubeconfig", str(sandbox.kubeconfig), *args], capture_output=True, text=True,
                          input=input_text, timeout=60, check=False)


def _apply(sandbox: Sandbox, documents: List[Dict[str, Any]]) -> None:
    done = kubectl(sandbox, "apply", "-f", "-", input_text=yaml.safe_dump_all(documents))
    assert done.returncode == 0, done.stderr


def _pod(sandbox: Sandbox, name: str) -> Dict[str, Any]:
    done = kubectl(sandbox, "get", "pod", name, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _wait(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "not within %g s: %s" % (timeout, what)
        time.sleep(0.5)


def _podman_pods(podman: Podman) -> List[str]:
    return podman("pod", "ps", "--format", "{{.Name}}").stdout.split()


@pytest.fixture(scope="module")
def sidecar(sandbox, podman, image, tmp_path_factory) -> Dict[str, Any]:
    """The role's rendered Secret and Pod, applied with kubectl, until the pod is ready."""
    workdir = tmp_path_factory.mktemp("sandbox-sidecar")
    documents = render_sidecar(workdir, sandbox.signing_key, image, "-e", "tutorial_okera_rest_url=%s" % sandbox.rest_url)
    _apply(sandbox, documents)

    def ready():
        pod = _pod(sandbox, "token-client")
        statuses = pod["status"].get("containerStatuses") or []
        return pod if statuses and all(status["ready"] for status in statuses) else None

    return _wait("pod token-client ready 2/2", ready)


def test_applied_sidecar_pod_runs_in_real_containers(sandbox, podman, sidecar):
    assert sidecar["status"]["phase"] == "Running"
    assert [list(status["state"]) for status in sidecar["status"]["containerStatuses"]] == [["running"], ["running"]]
    name = "default-token-client-%s" % sidecar["metadata"]["uid"][:8]
    assert name in _podman_pods(podman)
    # The daemon answers the service's container over the pod's loopback: real processes.
    done = podman.exec(name + "-myservice", "python", "-c",
                       "import urllib.request as u; print(u.urlopen('http://127.0.0.1:5001/analyst').read().decode())")
    assert done.returncode == 0 and done.stdout.startswith("/tmp/tokens/analyst."), done.stderr


def test_kubectl_logs_shows_the_containers_real_output(sandbox, sidecar):
    done = kubectl(sandbox, "logs", "token-client", "-c", "authserver")
    assert done.returncode == 0, done.stderr
    assert '"message":"Listening on http://127.0.0.1:5001"' in done.stdout


def test_okera_pods_stay_simulated(sandbox, podman, sidecar):
    pods = json.loads(kubectl(sandbox, "get", "pods", "-l", "app.kubernetes.io/part-of=okera", "-o", "json").stdout)["items"]
    assert pods and all(pod["status"]["phase"] == "Running" for pod in pods)
    assert all(status["imageID"].startswith("sandbox://") for pod in pods for status in pod["status"]["containerStatuses"])
    assert not [name for name in _podman_pods(podman) if "cerebro" in name or "cdas" in name]


def test_crashing_image_shows_crash_loop_back_off(sandbox, podman, sidecar):
    _apply(sandbox, [CRASHER])

    def crashed_twice():
        pod = _pod(sandbox, "crasher")
        (status,) = pod["status"].get("containerStatuses") or [{}]
        waiting = (status.get("state") or {}).get("waiting") or {}
        return status if waiting.get("reason") == "CrashLoopBackOff" and status["restartCount"] >= 2 else None

    status = _wait("crasher in CrashLoopBackOff, restarted twice", crashed_twice)
    assert status["lastState"]["terminated"]["exitCode"] == 2
    assert "private key file /nonexistent.pem does not exist" in status["lastState"]["terminated"]["message"]
    table = kubectl(sandbox, "get", "pod", "crasher").stdout
    assert "CrashLoopBackOff" in table and "0/1" in table
    logs = kubectl(sandbox, "logs", "crasher").stdout
    assert "okera-authserver: private key file /nonexistent.pem does not exist" in logs

    done = kubectl(sandbox, "delete", "pod", "crasher")
    assert done.returncode == 0, done.stderr
    _wait("the crasher's podman pod removed", lambda: not [name for name in _podman_pods(podman) if "-crasher-" in name])


def test_stopping_the_sandbox_removes_its_pods(podman, image, tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"):
            patch.setenv(name, podman.env[name])
        cluster = Sandbox(tmp_path / "state", extra_start=["--podman"])
        try:
            _apply(cluster, [CRASHER])
            _wait("the crasher's podman pod", lambda: [name for name in _podman_pods(podman) if "-crasher-" in name])
        finally:
            cluster.stop()
    assert not [name for name in _podman_pods(podman) if "-crasher-" in name]
