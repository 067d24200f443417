"""The in-cluster fallback: with no kubeconfig and no host, the modules use the pod's service account
(KUBERNETES_SERVICE_HOST/PORT, the token and CA the kubelet mounts); here a pod's files are laid out in a
temp directory (OKERA_AUTH_SERVICE_ACCOUNT_DIR) and the cluster is a sandbox."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from okera_auth.module_utils._k8s.client import ClusterError, build_configuration


def _service_account(directory: Path, token: str, ca: bytes) -> Path:
    """The two files a pod sees under /var/run/secrets/kubernetes.io/serviceaccount."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_bytes(ca)
    (directory / "namespace").write_text("default")
    return directory


def _pod_environ(sandbox, account: Path, home: Path) -> dict:
    """What a pod's process sees: the service host and port, no kubeconfig, no K8S_AUTH_* variables."""
    server = urlsplit(sandbox.url)
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("K8S_AUTH_") and name != "KUBECONFIG"}
    environ.update(KUBERNETES_SERVICE_HOST=server.hostname, KUBERNETES_SERVICE_PORT=str(server.port),
                   OKERA_AUTH_SERVICE_ACCOUNT_DIR=str(account), HOME=str(home))
    return environ


def _result(output: str) -> dict:
    """The module's result from the minimal callback's `localhost | SUCCESS => {...}`."""
    return json.loads(output[output.index("=> ") + 3:])


def test_the_service_account_configures_host_token_and_ca(tmp_path):
    account = _service_account(tmp_path / "sa", "pod-token-123", b"-----BEGIN CERTIFICATE-----\nx\n")
    configuration = build_configuration({}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                                             "OKERA_AUTH_SERVICE_ACCOUNT_DIR": str(account)})
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.ssl_ca_cert == str(account / "ca.crt")
    assert configuration.get_api_key_with_prefix("BearerToken") == "bearer pod-token-123"


def test_a_pod_without_a_mounted_token_gets_one_line_saying_so(tmp_path):
    with pytest.raises(ClusterError) as raised:
        build_configuration({}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                                 "OKERA_AUTH_SERVICE_ACCOUNT_DIR": str(tmp_path / "none")})
    assert str(raised.value) == (
        "cannot use the in-cluster service account (%s): Service token file does not exist.; run in a pod whose "
        "service account token is mounted, or set kubeconfig or host" % (tmp_path / "none"))


def test_a_module_run_as_a_pod_runs_it_reads_the_secret_with_the_service_account(sandbox, tmp_path):
    token = (sandbox.state_dir / "admin.token").read_text().strip()
    account = _service_account(tmp_path / "sa", token, (sandbox.state_dir / "ca.crt").read_bytes())
    environ = _pod_environ(sandbox, account, tmp_path)
    environ.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    done = subprocess.run([str(Path(sys.executable).with_name("ansible")), "localhost", "-c", "local",
                           "-m", "okera.auth.k8s_secret_data_info",
                           "-a", "namespace=default name=secrets keys=SYSTEM_TOKEN_0"],
                          capture_output=True, text=True, env=environ, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = _result(done.stdout)
    assert result["exists"] and list(result["hashes"]) == ["SYSTEM_TOKEN_0"] and result["missing_keys"] == []
    assert token not in done.stdout + done.stderr

    # The same pod with a token the cluster does not know: 401, in one line.
    _service_account(account, "not-the-token", (sandbox.state_dir / "ca.crt").read_bytes())
    refused = subprocess.run([str(Path(sys.executable).with_name("ansible")), "localhost", "-c", "local",
                              "-m", "okera.auth.k8s_secret_data_info", "-a", "namespace=default name=secrets"],
                             capture_output=True, text=True, env=environ, timeout=120, check=False)
    assert refused.returncode != 0
    message = _result(refused.stdout)["msg"]
    assert "rejected the credentials (401 Unauthorized)" in message and "not-the-token" not in refused.stdout
