"""A sandbox cluster for tests: `okera-auth-sandbox` of this checkout, started in a temp directory.

The tests look at the cluster with the official typed client (not with the collection's own
code), so that what they check does not depend on what they test.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


def sandbox_command(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "okera_auth.sandbox", *args], capture_output=True, text=True, timeout=120,
                          check=False)
    if done.returncode:
        raise RuntimeError("okera-auth-sandbox %s failed: %s" % (" ".join(args), done.stderr.strip()))
    return done


class Sandbox:
    """One running sandbox cluster."""

    def __init__(self, state_dir: Path, token_ttl: str = "2d", extra_init: Optional[List[str]] = None,
                 extra_start: Optional[List[str]] = None) -> None:
        """``extra_start``: more options of ``start``, e.g. ``--verbose`` to log every request to server.log."""
        self.state_dir = state_dir
        sandbox_command("init", "--state-dir", str(state_dir), "--token-ttl", token_ttl, *(extra_init or []))
        sandbox_command("start", "--state-dir", str(state_dir), "--port", "0", "--pod-start-delay", "0.2",
                        *(extra_start or []))
        self._clients: Dict[str, object] = {}
        self.wait_until_ready()

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Until every pod is Ready (the services start a moment after the server)."""
        deadline = time.monotonic() + timeout
        while True:
            pods = self.core().list_namespaced_pod("default").items
            if pods and all(any(condition.type == "Ready" and condition.status == "True"
                                for condition in pod.status.conditions or []) for pod in pods):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox's pods were not ready within %g s" % timeout)
            time.sleep(0.2)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def signing_key(self) -> Path:
        return self.state_dir / "signing-key.pem"

    @property
    def url(self) -> str:
        return yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]

    @property
    def rest_url(self) -> str:
        """Where the sandbox's Okera REST API listens (Service cdas-rest-server's load balancer)."""
        return self.status()["rest"]["url"]

    def pod_token_hashes(self) -> Dict[str, Optional[str]]:
        """For each pod, the SHA-256 of the system token its running container started with."""
        return {pod["name"]: pod["token_sha256"] for pod in self.status()["pods"]}

    def stop(self) -> None:
        sandbox_command("stop", "--state-dir", str(self.state_dir))

    def status(self) -> dict:
        return json.loads(sandbox_command("status", "--state-dir", str(self.state_dir), "--json").stdout)

    def core(self):
        from kubernetes import client, config

        if "core" not in self._clients:
            self._clients["core"] = client.CoreV1Api(config.new_client_from_config(str(self.kubeconfig)))
        return self._clients["core"]

    def apps(self):
        from kubernetes import client, config

        if "apps" not in self._clients:
            self._clients["apps"] = client.AppsV1Api(config.new_client_from_config(str(self.kubeconfig)))
        return self._clients["apps"]

    def secret(self, name: str = "secrets", namespace: str = "default"):
        return self.core().read_namespaced_secret(name, namespace)

    def secret_value(self, key: str = "SYSTEM_TOKEN_0", name: str = "secrets") -> Optional[str]:
        data = self.secret(name).data or {}
        return base64.b64decode(data[key]).decode() if key in data else None

    def set_fault(self, **faults: str) -> None:
        """Sandbox faults (e.g. rejectTokensIssuedAfter) in the ConfigMap the simulated pods read."""
        body = {"metadata": {"name": "okera-sandbox-faults"}, "data": faults}
        self.core().create_namespaced_config_map("default", body)

    def set_faults(self, *rules: dict) -> None:
        """The API server's injected faults (okera-auth-sandbox fault): these rules from its next request on."""
        from okera_auth.sandbox.faults import parse_rule, write_rules

        write_rules(str(self.state_dir / "faults.json"), [parse_rule(rule) for rule in rules])

    def restart_annotations(self) -> Dict[str, Optional[str]]:
        """kubectl.kubernetes.io/restartedAt of each workload (None if never restarted)."""
        found = {}
        for item in (self.apps().list_namespaced_deployment("default").items
                     + self.apps().list_namespaced_stateful_set("default").items):
            annotations = item.spec.template.metadata.annotations or {}
            found[item.metadata.name] = annotations.get("kubectl.kubernetes.io/restartedAt")
        return found
