"""`okera-auth-sandbox serve --podman`: the sandbox runs the pods that are not Okera's for real.

`kubectl apply` of the role's rendered sidecar manifests starts real containers (podman kube
play), `kubectl get pods` and `kubectl logs` show what they do, a crashing image shows
CrashLoopBackOff with its exit code and message, deleting the pod or stopping the sandbox
removes the containers, and the simulated Okera pods stay simulated.
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest
import yaml

from okera_auth.module_utils import keys, tokens
from okera_auth.module_utils.signing_key import fingerprint
from podman_harness import FIGURES, Podman, ansible_playbook, render_sidecar
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
def sidecar_documents(sandbox, image, tmp_path_factory) -> List[Dict[str, Any]]:
    """The role's rendered Secret and Pod."""
    workdir = tmp_path_factory.mktemp("sandbox-sidecar")
    return render_sidecar(workdir, sandbox.signing_key, image, "-e", "tutorial_okera_rest_url=%s" % sandbox.rest_url)


@pytest.fixture(scope="module")
def sidecar(sandbox, podman, sidecar_documents) -> Dict[str, Any]:
    """The role's rendered Secret and Pod, applied with kubectl, until the pod is ready."""
    _apply(sandbox, sidecar_documents)

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


KID_LINE = re.compile(r"(?:Signing with .* key|Reloaded key) kid=([A-Za-z0-9_-]+)")
MINT = ("import json, sys, urllib.request as u; "
        "print(json.load(u.urlopen('http://127.0.0.1:%s/analyst?format=json'))['token'])")


def _ready_pods(sandbox: Sandbox, selector: str) -> List[Dict[str, Any]]:
    pods = json.loads(kubectl(sandbox, "get", "pods", "-l", selector, "-o", "json").stdout)["items"]
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")
            and any(condition["type"] == "Ready" and condition["status"] == "True" for condition in pod["status"].get("conditions") or [])]


def _signing_kid(sandbox: Sandbox, pod: Dict[str, Any]) -> str:
    found = KID_LINE.findall(kubectl(sandbox, "logs", pod["metadata"]["name"], "-c", "authserver").stdout)
    return found[-1] if found else ""


def test_switching_the_signing_key_checks_each_sidecar_pod_logs_the_new_key(sandbox, podman, sidecar_documents, tmp_path):
    """rotate_signing_key.yml up to the switch, with a sidecar auth server Deployment (the role's rendered
    auth-server container) in real containers: the role waits until its new pod logs the new key's id,
    and a token the new pod mints verifies with the new public key only."""
    secret, pod = (next(document for document in sidecar_documents if document["kind"] == kind) for kind in ("Secret", "Pod"))
    secret = dict(copy.deepcopy(secret), metadata={"name": "kid-check-authserver-key"})
    spec = copy.deepcopy(pod["spec"])
    spec["containers"] = [container for container in spec["containers"] if container["name"] == "authserver"]
    for volume in spec["volumes"]:
        if "secret" in volume:
            volume["secret"]["secretName"] = secret["metadata"]["name"]
    labels = {"app": "kid-check"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kid-check", "labels": labels},
                  "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels, "annotations": pod["metadata"].get("annotations") or {}},
                                        "spec": spec}}}
    _apply(sandbox, [secret, deployment])
    old_key = tmp_path / "signing.pem"
    old_key.write_bytes(sandbox.signing_key.read_bytes())
    old_kid = fingerprint(keys.load_private_key(old_key.read_bytes()))
    (old_pod,) = _wait("the sidecar's first pod ready", lambda: _ready_pods(sandbox, "app=kid-check"))
    assert _wait("its log naming the old key", lambda: _signing_kid(sandbox, old_pod)) == old_kid

    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"okera_clusters": {"hosts": {"sandbox": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "signing_key_kubeconfig": str(sandbox.kubeconfig), "signing_key_private_key_path": str(old_key),
        "signing_key_rest_url": sandbox.rest_url, "signing_key_backup_dir": str(tmp_path / "backups"),
        "signing_key_wait_sleep": 1, "signing_key_wait_timeout": 60, "signing_key_stop_after": "switch",
        # Okera's pods read JWT_PUBLIC_KEY; the sidecar is rolled out by the switch alone.
        "signing_key_restart_label_selector": "app.kubernetes.io/part-of=okera",
        # Re-minting the system token is the integration tests' subject, not the sidecar's.
        "signing_key_system_token": False,
        "signing_key_authserver_sidecars": [{"secret_name": "kid-check-authserver-key", "deployment": "kid-check"}]}}}}))
    started = time.monotonic()
    done = ansible_playbook(tmp_path, "rotate_signing_key.yml", "-i", str(inventory))
    FIGURES["rotate_signing_key.yml to the switch, one sidecar in podman"] = "%.0f s" % (time.monotonic() - started)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "Check that each sidecar's auth server signs with the new key" in done.stdout

    new_key = keys.load_private_key(old_key.read_bytes())
    new_kid = fingerprint(new_key)
    assert new_kid != old_kid and (tmp_path / "signing.pem.previous").read_bytes() == sandbox.signing_key.read_bytes()
    new_pods = _ready_pods(sandbox, "app=kid-check")
    assert new_pods and old_pod["metadata"]["uid"] not in {pod["metadata"]["uid"] for pod in new_pods}
    for new_pod in new_pods:
        assert _signing_kid(sandbox, new_pod) == new_kid
        container = "default-%s-%s-authserver" % (new_pod["metadata"]["name"], new_pod["metadata"]["uid"][:8])
        minted = podman.exec(container, "python", "-c", MINT % 5001)
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip()
        assert tokens.decode_unverified(token).header["kid"] == new_kid
        public = {"new": keys.load_public_keys(keys.public_key_pem(new_key.public_key())),
                  "old": keys.load_public_keys(keys.public_key_pem(keys.load_private_key(sandbox.signing_key.read_bytes()).public_key()))}
        assert tokens.verify(token, public["new"], ["RS512"]).valid
        assert not tokens.verify(token, public["old"], ["RS512"]).valid
    done = kubectl(sandbox, "delete", "deployment", "kid-check")
    assert done.returncode == 0, done.stderr


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
