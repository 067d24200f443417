"""The authserver_sidecar role, run by ansible-playbook.

Most cases are the hosts of one inventory (tests/integration/playbooks/render_sidecar_per_host.yml):
one ansible-playbook run renders every shape, and another refuses every bad variable, so the
module costs two runs instead of forty. The runs of playbooks/render_sidecar.yml itself check what
one run shows: idempotence, check mode, the key kept out of the output, applying to a cluster.
"""
from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import jwt
import kubernetes_validate
import pytest
import yaml

from sandbox_cluster import Sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO_ROOT / "playbooks" / "render_sidecar.yml"
PER_HOST_PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "render_sidecar_per_host.yml"
TUTORIAL_VARS = REPO_ROOT / "roles" / "authserver_sidecar" / "files" / "tutorial_service.yml"
KUBERNETES_VERSION = "1.32.0"  # the API version the sandbox serves; the schemas ship with kubernetes-validate
DAEMON_GROUP = os.getgid() or 2000  # root may chown token files to any group; others only to their own


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Health:
    """A /healthz on 127.0.0.1 that answers with a chosen status, to run the rendered probe against."""

    def __init__(self, status: int) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(status if self.path == "/healthz" else 404)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def health_ports() -> Iterator[Dict[str, int]]:
    """Ports answering /healthz with 200 and with 503, and one where nothing listens."""
    healthy, failing = _Health(200), _Health(503)
    try:
        yield {"healthy": healthy.port, "failing": failing.port, "closed": _free_port()}
    finally:
        healthy.close()
        failing.close()


def _tutorial_vars(key_file: Path, output_dir: Path) -> Dict[str, Any]:
    merged = yaml.safe_load(TUTORIAL_VARS.read_text())
    merged.update(authserver_sidecar_private_key_file=str(key_file), authserver_sidecar_output_dir=str(output_dir))
    return merged


def _run_per_host(workdir: Path, collections: Path, key_file: Path,
                  cases: Dict[str, Dict[str, Any]]) -> subprocess.CompletedProcess:
    """One run of the per-host playbook; host CASE has the tutorial's variables updated by cases[CASE]
    and writes into workdir / CASE."""
    hosts = {case: dict(_tutorial_vars(key_file, workdir / case), ansible_connection="local",
                        ansible_python_interpreter=sys.executable, **variables)
             for case, variables in cases.items()}
    inventory = workdir / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_FORKS="8")
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory),
                           str(PER_HOST_PLAYBOOK)], capture_output=True, text=True, env=env, timeout=600, check=False)


def _failure_messages(output: str) -> Dict[str, List[str]]:
    """The `msg` of every failed result of each host, from the default callback's one-line results."""
    found: Dict[str, List[str]] = {}
    for host, result in re.findall(r"^(?:fatal|failed): \[([^\]]+)\].*? => (\{.*\})$", output, re.MULTILINE):
        found.setdefault(host, []).append(json.loads(result).get("msg", ""))
    return found


RENDERED_CASES: Dict[str, Dict[str, Any]] = {
    "tutorial": {},
    "deployment": {"authserver_sidecar_kind": "Deployment", "authserver_sidecar_replicas": 2},
    "native_deployment": {"authserver_sidecar_kind": "Deployment", "authserver_sidecar_native_sidecar": True},
    "native_pod": {"authserver_sidecar_native_sidecar": True},
    "key_content": {"authserver_sidecar_private_key_file": "", "authserver_sidecar_private_key_content": "KEY TEXT",
                    "authserver_sidecar_private_key_passphrase": "s3cret words"},
    "options": {"authserver_sidecar_issuer": "okera-prod", "authserver_sidecar_audience": ["okera", "presto"],
                "authserver_sidecar_claims": {"groups": ["analysts"], "tier": 2},
                "authserver_sidecar_token_dir": "/tmp/tokens/users", "authserver_sidecar_port": 6001,
                "authserver_sidecar_extra_args": ["--disable-delete"],
                "authserver_sidecar_extra_env": [{"name": "TZ", "value": "UTC"}]},
    "service": {"authserver_sidecar_service_container": {
        "name": "app", "image": "example/app:1", "env": [{"name": "MODE", "value": "batch"}],
        "securityContext": {"runAsUser": 4242}}},
    "names": {"authserver_sidecar_kind": "Deployment", "authserver_sidecar_workload_name": "reporting",
              "authserver_sidecar_namespace": "analytics", "authserver_sidecar_secret_name": "reporting.jwt-key",
              "authserver_sidecar_container_name": "tokens-daemon", "authserver_sidecar_labels": {"team": "bi"},
              "authserver_sidecar_pod_annotations": {"example.com/owner": "bi"}},
    "no_secret": {"authserver_sidecar_render_secret": False},
    # Okera's tutorial Secret: 'authentication' with the key JWT_PRIVATE_KEY, mounted at /etc/secrets.
    "tutorial_secret": {"authserver_sidecar_secret_name": "authentication", "authserver_sidecar_secret_key": "JWT_PRIVATE_KEY",
                        "authserver_sidecar_key_mount_path": "/etc/secrets"},
    "existing_secret": {"authserver_sidecar_existing_secret": True, "authserver_sidecar_private_key_file": "",
                        "authserver_sidecar_secret_name": "authentication", "authserver_sidecar_secret_key": "JWT_PRIVATE_KEY",
                        "authserver_sidecar_key_mount_path": "/etc/secrets"},
    "myservice": {"tutorial_client": "myservice", "tutorial_okera_rest_url": "https://okera.example.com:8083",
                  "authserver_sidecar_fs_group": DAEMON_GROUP},  # its port is chosen when the module runs
    "python313": {"authserver_sidecar_base_image": "python:3.13-slim"},
    "daemon": {"authserver_sidecar_fs_group": DAEMON_GROUP},  # its port is chosen when the module runs
    "probe_healthy": {}, "probe_failing": {}, "probe_closed": {},  # ports from health_ports
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, collections_path, key_dir, health_ports) -> Dict[str, Path]:
    """Every case of RENDERED_CASES rendered by one playbook run: case -> its output directory."""
    workdir = tmp_path_factory.mktemp("rendered")
    cases = dict(RENDERED_CASES, daemon=dict(RENDERED_CASES["daemon"], authserver_sidecar_port=_free_port()),
                 myservice=dict(RENDERED_CASES["myservice"], authserver_sidecar_port=_free_port()),
                 **{"probe_" + name: {"authserver_sidecar_port": port} for name, port in health_ports.items()})
    done = _run_per_host(workdir, collections_path, key_dir / "private.pem", cases)
    assert done.returncode == 0, done.stdout + done.stderr
    return {case: workdir / case for case in cases}


def _documents(path: Path) -> List[Dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _objects(rendered: Dict[str, Path], case: str, service: str = "token-client") -> Dict[str, Dict[str, Any]]:
    return {document["kind"]: document for document in _documents(rendered[case] / (service + ".yml"))}


def _pod_spec(workload: Dict[str, Any]) -> Dict[str, Any]:
    return workload["spec"]["template"]["spec"] if workload["kind"] == "Deployment" else workload["spec"]


def _containers(spec: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {container["name"]: container for container in spec.get("initContainers", []) + spec["containers"]}


def _env(container: Dict[str, Any]) -> Dict[str, str]:
    return {entry["name"]: entry["value"] for entry in container["env"]}


def _pod(rendered: Dict[str, Path], case: str) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """The tutorial Pod's spec and its containers by name."""
    spec = _objects(rendered, case)["Pod"]["spec"]
    return spec, _containers(spec)


@pytest.mark.parametrize("case", sorted(RENDERED_CASES))
def test_every_case_validates_against_kubernetes_schemas(rendered, case):
    documents = _documents(next(rendered[case].glob("*.yml")))
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_tutorial_renders_a_secret_and_a_pod(rendered):
    assert [document["kind"] for document in _documents(rendered["tutorial"] / "token-client.yml")] == ["Secret", "Pod"]


@pytest.mark.parametrize("case, kind, native", [("deployment", "Deployment", False), ("native_deployment", "Deployment", True),
                                                ("native_pod", "Pod", True), ("tutorial", "Pod", False)])
def test_shapes_place_the_daemon_as_container_or_native_sidecar(rendered, case, kind, native):
    spec = _pod_spec(_objects(rendered, case)[kind])
    if native:
        assert [c["name"] for c in spec["initContainers"]] == ["authserver"]
        assert spec["initContainers"][0]["restartPolicy"] == "Always"
        assert [c["name"] for c in spec["containers"]] == ["client"]
    else:
        assert "initContainers" not in spec
        assert [c["name"] for c in spec["containers"]] == ["authserver", "client"]


def test_deployment_selects_its_own_pods(rendered):
    deployment = _objects(rendered, "deployment")["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_secret_holds_the_key_file_base64(rendered, rsa_key_pem):
    secret = _objects(rendered, "tutorial")["Secret"]
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["private.pem"]) == rsa_key_pem
    assert secret["metadata"]["name"] == "token-client-authserver-key"


def test_pod_carries_the_key_hash_so_a_new_key_rolls_it(rendered, rsa_key_pem):
    annotation = "okera.auth/private-key-sha256"
    assert _objects(rendered, "tutorial")["Pod"]["metadata"]["annotations"][annotation] == hashlib.sha256(rsa_key_pem).hexdigest()
    assert _objects(rendered, "key_content")["Pod"]["metadata"]["annotations"][annotation] == hashlib.sha256(b"KEY TEXT").hexdigest()


def test_key_content_and_passphrase_go_into_the_secret(rendered):
    objects = _objects(rendered, "key_content")
    data = objects["Secret"]["data"]
    assert base64.b64decode(data["private.pem"]) == b"KEY TEXT"
    assert base64.b64decode(data["passphrase"]) == b"s3cret words"
    env = _env(_containers(objects["Pod"]["spec"])["authserver"])
    assert env["OKERA_AUTHSERVER_PRIVATE_KEY_PASSPHRASE_FILE"] == "/etc/okera-authserver/passphrase"


def test_containers_share_the_token_volume_and_only_the_daemon_sees_the_key(rendered):
    spec, containers = _pod(rendered, "tutorial")
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["tokens"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Mi"}
    assert volumes["authserver-key"]["secret"] == {"secretName": "token-client-authserver-key", "defaultMode": 0o400}
    daemon_mounts = {mount["name"]: mount for mount in containers["authserver"]["volumeMounts"]}
    service_mounts = {mount["name"]: mount for mount in containers["client"]["volumeMounts"]}
    assert daemon_mounts["tokens"]["mountPath"] == service_mounts["tokens"]["mountPath"] == "/tmp/tokens"
    assert not daemon_mounts["tokens"].get("readOnly")
    assert service_mounts["tokens"]["readOnly"] is True
    assert daemon_mounts["authserver-key"] == {"name": "authserver-key", "mountPath": "/etc/okera-authserver",
                                               "readOnly": True}
    assert "authserver-key" not in service_mounts


def test_daemon_env_follows_the_contract(rendered):
    spec, containers = _pod(rendered, "tutorial")
    assert _env(containers["authserver"]) == {
        "OKERA_AUTHSERVER_PORT": "5001",
        "OKERA_AUTHSERVER_BIND": "127.0.0.1",
        "OKERA_AUTHSERVER_DIRECTORY": "/tmp/tokens",
        "OKERA_AUTHSERVER_PRIVATE_KEY": "/etc/okera-authserver/private.pem",
        "OKERA_AUTHSERVER_ALGORITHM": "rsa512",
        "OKERA_AUTHSERVER_GROUP": str(spec["securityContext"]["fsGroup"]),
        "OKERA_AUTHSERVER_TTL": "24h",
        "OKERA_AUTHSERVER_DELETE_AFTER": "10s",
        "OKERA_AUTHSERVER_DISABLE_DELETE": "false",
        "OKERA_AUTHSERVER_FILE_MODE": "0640",
        "OKERA_AUTHSERVER_LOG_FORMAT": "json",
        "OKERA_AUTHSERVER_WORKERS": "1",
    }


def test_optional_daemon_settings_reach_its_env(rendered):
    containers = _pod(rendered, "options")[1]
    env = _env(containers["authserver"])
    assert env["OKERA_AUTHSERVER_ISSUER"] == "okera-prod"
    assert env["OKERA_AUTHSERVER_AUDIENCE"] == "okera,presto"
    assert json.loads(env["OKERA_AUTHSERVER_CLAIMS"]) == {"groups": ["analysts"], "tier": 2}
    assert env["OKERA_AUTHSERVER_DIRECTORY"] == "/tmp/tokens/users"
    assert env["OKERA_AUTHSERVER_PORT"] == "6001"
    assert env["TZ"] == "UTC"
    assert containers["authserver"]["args"] == ["--disable-delete"]
    assert _env(containers["client"])["OKERA_AUTHSERVER_TOKEN_DIR"] == "/tmp/tokens/users"
    assert _env(containers["client"])["OKERA_AUTHSERVER_URL"] == "http://127.0.0.1:6001"


def test_service_env_points_at_the_daemon_before_its_own_env(rendered):
    containers = _pod(rendered, "service")[1]
    service = containers["app"]
    assert [entry["name"] for entry in service["env"]] == [
        "OKERA_AUTHSERVER_HOST", "OKERA_AUTHSERVER_PORT", "OKERA_AUTHSERVER_URL", "OKERA_AUTHSERVER_TOKEN_DIR", "MODE"]
    assert _env(service)["OKERA_AUTHSERVER_HOST"] == "127.0.0.1"
    assert service["securityContext"]["runAsUser"] == 4242  # the service's own setting wins
    assert service["securityContext"]["readOnlyRootFilesystem"] is True


def test_probes_run_on_loopback_healthz(rendered):
    containers = _pod(rendered, "tutorial")[1]
    daemon = containers["authserver"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = daemon[probe]["exec"]["command"]
        assert command[:2] == ["python", "-c"]
        assert '"/healthz"' in command[2] and '"127.0.0.1",5001' in command[2]
        assert daemon[probe]["timeoutSeconds"] <= daemon[probe]["periodSeconds"]


@pytest.mark.parametrize("case, healthy", [("probe_healthy", True), ("probe_failing", False), ("probe_closed", False)])
def test_rendered_probe_passes_only_on_a_healthy_answer(rendered, case, healthy):
    containers = _pod(rendered, case)[1]
    command = containers["authserver"]["readinessProbe"]["exec"]["command"]
    probe = subprocess.run([sys.executable, *command[1:]], capture_output=True, timeout=10, check=False)
    assert (probe.returncode == 0) is healthy


def _start_rendered_daemon(containers: Dict[str, Dict[str, Any]], token_dir: Path, key_file: Path) -> subprocess.Popen:
    """The daemon with the auth-server container's env, key and token paths moved into the test's tmp."""
    daemon_env = dict(_env(containers["authserver"]), OKERA_AUTHSERVER_DIRECTORY=str(token_dir),
                      OKERA_AUTHSERVER_PRIVATE_KEY=str(key_file))
    daemon = subprocess.Popen([sys.executable, "-m", "okera_auth.authserver"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=dict(os.environ, **daemon_env))
    probe = [sys.executable, *containers["authserver"]["readinessProbe"]["exec"]["command"][1:]]
    deadline = time.monotonic() + 20
    try:
        while subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode != 0:
            assert daemon.poll() is None and time.monotonic() < deadline, "the daemon never turned healthy"
            time.sleep(0.2)
    except BaseException:
        daemon.kill()
        daemon.communicate(timeout=20)
        raise
    return daemon


@pytest.mark.slow
def test_real_daemon_runs_on_the_rendered_env_and_serves_the_service(rendered, tmp_path, key_dir,
                                                                     rsa_private_key):
    """The daemon started with the auth-server container's env (key and token paths moved into
    tmp_path) passes the rendered probe and hands out tokens where the service's env says."""
    containers = _pod(rendered, "daemon")[1]
    service_env = _env(containers["client"])
    token_dir = tmp_path / service_env["OKERA_AUTHSERVER_TOKEN_DIR"].lstrip("/")
    token_dir.mkdir(parents=True)
    daemon = _start_rendered_daemon(containers, token_dir, key_dir / "private.pem")
    try:
        with urllib.request.urlopen(service_env["OKERA_AUTHSERVER_URL"] + "/analyst", timeout=10) as answer:
            path = Path(answer.read().decode())
        assert path.parent == token_dir
        status = path.stat()
        assert (oct(status.st_mode & 0o777), status.st_gid) == ("0o640", DAEMON_GROUP)
        claims = jwt.decode(path.read_text().strip(), rsa_private_key.public_key(), algorithms=["RS512"])
        assert claims["sub"] == "analyst"
    finally:
        daemon.terminate()
        output = daemon.communicate(timeout=20)[0]
    assert daemon.returncode == 0, output


def test_security_contexts_are_restricted(rendered):
    spec, containers = _pod(rendered, "tutorial")
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in containers.values():
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert containers["authserver"]["securityContext"]["runAsGroup"] == spec["securityContext"]["fsGroup"]
    assert set(containers["authserver"]["resources"]) == {"requests", "limits"}


def test_labels_and_names_can_be_set(rendered):
    objects = _objects(rendered, "names")
    deployment, secret = objects["Deployment"], objects["Secret"]
    assert deployment["metadata"]["name"] == "reporting"
    assert {deployment["metadata"]["namespace"], secret["metadata"]["namespace"]} == {"analytics"}
    assert deployment["metadata"]["labels"]["team"] == secret["metadata"]["labels"]["team"] == "bi"
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "bi"
    assert template["metadata"]["annotations"]["example.com/owner"] == "bi"
    assert template["spec"]["volumes"][1]["secret"]["secretName"] == "reporting.jwt-key"
    assert "tokens-daemon" in _containers(template["spec"])


def test_secret_can_be_left_out_of_the_file(rendered, rsa_key_pem):
    path = rendered["no_secret"] / "token-client.yml"
    assert [document["kind"] for document in _documents(path)] == ["Pod"]
    assert base64.b64encode(rsa_key_pem).decode()[:40] not in path.read_text()


def test_tutorial_secret_name_key_and_mount_can_be_expressed(rendered, rsa_key_pem):
    objects = _objects(rendered, "tutorial_secret")
    assert objects["Secret"]["metadata"]["name"] == "authentication"
    assert base64.b64decode(objects["Secret"]["data"]["JWT_PRIVATE_KEY"]) == rsa_key_pem
    assert list(objects["Secret"]["data"]) == ["JWT_PRIVATE_KEY"]
    spec, containers = _pod(rendered, "tutorial_secret")
    assert _env(containers["authserver"])["OKERA_AUTHSERVER_PRIVATE_KEY"] == "/etc/secrets/JWT_PRIVATE_KEY"
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["authserver-key"]["secret"]["secretName"] == "authentication"
    mounts = {mount["name"]: mount for mount in containers["authserver"]["volumeMounts"]}
    assert mounts["authserver-key"]["mountPath"] == "/etc/secrets"


def test_existing_secret_needs_no_key_and_renders_none(rendered, rsa_key_pem):
    path = rendered["existing_secret"] / "token-client.yml"
    assert [document["kind"] for document in _documents(path)] == ["Pod"]
    assert base64.b64encode(rsa_key_pem).decode()[:40] not in path.read_text()
    pod = _objects(rendered, "existing_secret")["Pod"]
    assert "okera.auth/private-key-sha256" not in pod["metadata"].get("annotations", {})
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert volumes["authserver-key"]["secret"] == {"secretName": "authentication", "defaultMode": 0o400}
    assert _env(_containers(pod["spec"])["authserver"])["OKERA_AUTHSERVER_PRIVATE_KEY"] == "/etc/secrets/JWT_PRIVATE_KEY"


def test_myservice_is_the_tutorials_service_container(rendered):
    spec, containers = _pod(rendered, "myservice")
    assert [container["name"] for container in spec["containers"]] == ["authserver", "myservice"]
    service = containers["myservice"]
    assert service["image"] == containers["authserver"]["image"]  # the package is in the auth server's image
    assert service["command"] == ["python", "-m", "okera_auth.examples.myservice"]
    assert service["args"] == ["--port", "5010"]
    assert service["ports"] == [{"name": "http", "containerPort": 5010}]
    env = _env(service)
    assert env["OKERA_REST_URL"] == "https://okera.example.com:8083"
    assert env["OKERA_AUTHSERVER_URL"] == "http://127.0.0.1:%s" % _env(containers["authserver"])["OKERA_AUTHSERVER_PORT"]
    assert service["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.slow
def test_rendered_myservice_lists_databases_through_the_rendered_daemon(rendered, tmp_path, key_dir, rsa_public_pem):
    """The tutorial's pod, run here: the daemon on its rendered env, the service on its rendered
    command and env (its port and REST URL pointed at this test), curl as in the tutorial."""
    from okera_rest_stub import OkeraRestStub

    containers = _pod(rendered, "myservice")[1]
    service = containers["myservice"]
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    stub = OkeraRestStub(rsa_public_pem)
    daemon = _start_rendered_daemon(containers, token_dir, key_dir / "private.pem")
    service_port = _free_port()
    service_env = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    service_env.update(_env(service), OKERA_REST_URL=stub.url)
    command = [sys.executable, *service["command"][1:], *service["args"], "--port", str(service_port)]
    process = subprocess.Popen(command, env=service_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            done = subprocess.run(["curl", "-s", "--noproxy", "*", "http://test:test@localhost:%d" % service_port],
                                  capture_output=True, text=True, timeout=30, check=False)
            if done.returncode == 0 or time.monotonic() > deadline or process.poll() is not None:
                break
            time.sleep(0.2)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == ["default", "okera_sample"]
        assert stub.callers == ["test"]
    finally:
        process.terminate()
        service_log = process.communicate(timeout=20)[1]
        daemon.terminate()
        daemon_log = daemon.communicate(timeout=20)[0]
        stub.close()
    assert process.returncode == 0, service_log
    assert daemon.returncode == 0, daemon_log
    assert re.search(r"Generated token: %s/test\.\d+\.token" % re.escape(str(token_dir)), daemon_log)


def test_containerfile_installs_the_wheel_and_runs_the_daemon(rendered):
    text = (rendered["python313"] / "Containerfile.okera-authserver").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM python:3.13-slim AS wheels"
    assert "RUN pip wheel --no-cache-dir --wheel-dir /wheels ." in lines
    assert "FROM python:3.13-slim" in lines
    assert any("pip install --no-cache-dir --no-index --find-links /wheels okera-auth" in line for line in lines)
    assert "USER 65532:2000" in lines
    assert "OKERA_AUTHSERVER_TUTORIAL_ENV=true" in text  # the tutorial's PORT, TOKEN_DIR, SECRET_DIR ... work
    assert lines[-1] == 'ENTRYPOINT ["okera-authserver"]'
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for path in source.split():
            assert (REPO_ROOT / path).exists(), "the Containerfile copies %s, missing from the repository" % path


PASTED_KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOkwkRxqu6nD6sFoiUmBvQ9kZsJ6nKLmXGkCDgN8qOjX\n-----END PRIVATE KEY-----\n"
REFUSED_CASES: Dict[str, Tuple[Dict[str, Any], str]] = {
    "no_key": ({"authserver_sidecar_private_key_file": ""},
               "Give the auth server's private key in exactly one of authserver_sidecar_private_key_file"),
    "two_keys": ({"authserver_sidecar_private_key_content": "KEY"},
                 "Give the auth server's private key in exactly one of authserver_sidecar_private_key_file"),
    "missing_key_file": ({"authserver_sidecar_private_key_file": "/nonexistent/key.pem"},
                         "authserver_sidecar_private_key_file '/nonexistent/key.pem' is not a file on the controller"),
    "port_too_high": ({"authserver_sidecar_port": 70000},
                      "authserver_sidecar_port is 70000; give a TCP port from 1 to 65535."),
    "port_zero": ({"authserver_sidecar_port": 0}, "authserver_sidecar_port is 0; give a TCP port from 1 to 65535."),
    "token_dir_elsewhere": ({"authserver_sidecar_token_dir": "/var/tokens"},
                            "authserver_sidecar_token_dir '/var/tokens' is not inside the shared token volume"),
    "token_dir_sibling": ({"authserver_sidecar_token_dir": "/tmp/tokens-other"},
                          "authserver_sidecar_token_dir '/tmp/tokens-other' is not inside the shared token volume"),
    "token_dir_escapes": ({"authserver_sidecar_token_dir": "/tmp/tokens/../etc"},
                          "authserver_sidecar_token_dir '/tmp/tokens/../etc' is not inside the shared token volume"),
    "service_name": ({"authserver_sidecar_service_name": "Token_Client"},
                     "authserver_sidecar_service_name is 'Token_Client'; it must be a DNS-1123 label"),
    "namespace_too_long": ({"authserver_sidecar_namespace": "a" * 64},
                           "authserver_sidecar_namespace is (a value of 64 characters, not shown); it must be a DNS-1123 label"),
    "secret_name": ({"authserver_sidecar_secret_name": "bad..name"},
                    "authserver_sidecar_secret_name is 'bad..name'; it must be a DNS-1123 subdomain"),
    "bind_all": ({"authserver_sidecar_bind": "0.0.0.0"}, "the auth server accepts only loopback addresses"),
    "key_in_tokens": ({"authserver_sidecar_key_mount_path": "/tmp/tokens/key"},
                      "must be an absolute path outside the token volume"),
    "no_image": ({"authserver_sidecar_service_container": {"name": "client"}},
                 "authserver_sidecar_service_container has no image"),
    "same_names": ({"authserver_sidecar_service_container": {"name": "authserver", "image": "x"}}, "need distinct names"),
    "root_group": ({"authserver_sidecar_fs_group": 0}, "authserver_sidecar_fs_group is 0; give a numeric id above 0"),
    "existing_secret_with_key": ({"authserver_sidecar_existing_secret": True},
                                 "authserver_sidecar_existing_secret is true, so the pod uses the Secret 'token-client-authserver-key'"),
    "secret_key": ({"authserver_sidecar_secret_key": "keys/jwt"}, "authserver_sidecar_secret_key is 'keys/jwt'"),
    "secret_key_passphrase": ({"authserver_sidecar_secret_key": "passphrase", "authserver_sidecar_private_key_passphrase": "x"},
                              "other than 'passphrase' when a passphrase is given"),
    "myservice_without_url": ({"tutorial_client": "myservice"},
                              "tutorial_client myservice needs tutorial_okera_rest_url"),
    # A key pasted into a path and a name with a newline: one line, and never the key's text.
    "key_text_as_file": ({"authserver_sidecar_private_key_file": PASTED_KEY},
                         "authserver_sidecar_private_key_file (a value of %d characters, not shown)" % len(PASTED_KEY)),
    "name_with_newline": ({"authserver_sidecar_service_name": "token-client\nx"},
                          "authserver_sidecar_service_name is (a value of 14 characters, not shown)"),
    "name_with_trailing_newline": ({"authserver_sidecar_service_name": "token-client\n"},
                                   "authserver_sidecar_service_name is (a value of 13 characters, not shown)"),
    # Refused by Ansible's validation against meta/argument_specs.yml, before the preflight.
    "kind": ({"authserver_sidecar_kind": "StatefulSet"},
             "value of authserver_sidecar_kind must be one of: Deployment, Pod, got: StatefulSet"),
}


@pytest.fixture(scope="module")
def refused(tmp_path_factory, collections_path, key_dir) -> Tuple[Dict[str, List[str]], Path]:
    """Every case of REFUSED_CASES run by one playbook run: the failure messages by case, and the workdir."""
    workdir = tmp_path_factory.mktemp("refused")
    done = _run_per_host(workdir, collections_path, key_dir / "private.pem",
                         {case: variables for case, (variables, _message) in REFUSED_CASES.items()})
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    return _failure_messages(done.stdout), workdir


@pytest.mark.parametrize("case", sorted(REFUSED_CASES))
def test_bad_variables_fail_with_a_clear_message_before_rendering(refused, case):
    messages, workdir = refused
    expected = REFUSED_CASES[case][1]
    assert any(expected in message for message in messages.get(case, [])), messages.get(case)
    if case != "kind":  # Ansible's own argument validation heads its message with a line of its own
        assert all("\n" not in message for message in messages[case])
    assert all("BEGIN" not in message and "MC4CAQAw" not in message for message in messages[case])
    assert not (workdir / case).exists()


def _vars_file(workdir: Path, key_file: Path, variables: Dict[str, Any]) -> Path:
    """The tutorial's variables updated by `variables`, writing into workdir / "out"."""
    path = workdir / "vars.json"
    path.write_text(json.dumps(dict(_tutorial_vars(key_file, workdir / "out"), **variables)))
    return path


@pytest.fixture(name="render")
def render_fixture(run_playbook, tmp_path, key_dir):
    """render(variables, *args): one run of playbooks/render_sidecar.yml writing into tmp_path / "out"."""
    return lambda variables, *args: run_playbook(
        PLAYBOOK, "-e", "@%s" % _vars_file(tmp_path, key_dir / "private.pem", variables), *args)


def _recap(done: subprocess.CompletedProcess) -> Dict[str, int]:
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def test_missing_key_stops_the_playbook_with_one_line(render, tmp_path):
    done = render({"authserver_sidecar_private_key_file": ""})
    assert done.returncode != 0
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("fatal:")]
    assert "exactly one of authserver_sidecar_private_key_file" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_same_variables_render_identically_twice(render, tmp_path):
    first = render({})
    assert first.returncode == 0, first.stdout + first.stderr
    assert _recap(first)["changed"] >= 2
    written = {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()}
    assert set(written) == {"token-client.yml", "Containerfile.okera-authserver"}
    assert oct((tmp_path / "out" / "token-client.yml").stat().st_mode & 0o777) == "0o600"
    second = render({})
    assert second.returncode == 0, second.stdout + second.stderr
    assert _recap(second)["changed"] == 0
    assert {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()} == written
    third = render({"authserver_sidecar_ttl": "12h"})
    assert _recap(third)["changed"] == 1  # only the manifest file


@pytest.mark.parametrize("given_as", ["file", "content"])
def test_the_key_never_reaches_the_output(render, rsa_key_pem, given_as):
    key = ({"authserver_sidecar_private_key_file": "", "authserver_sidecar_private_key_content": rsa_key_pem.decode()}
           if given_as == "content" else {})
    done = render(dict(key, authserver_sidecar_private_key_passphrase="pass-phrase-words"), "-vvv", "--diff")
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    key_lines = [line for line in rsa_key_pem.decode().splitlines() if "PRIVATE KEY" not in line]
    encoded = base64.b64encode(rsa_key_pem).decode()
    assert not [line for line in key_lines if line in output]
    assert not [encoded[start:start + 40] for start in range(0, len(encoded) - 40, 40) if encoded[start:start + 40] in output]
    assert "pass-phrase-words" not in output and base64.b64encode(b"pass-phrase-words").decode() not in output


def test_check_mode_writes_nothing(render, tmp_path):
    done = render({}, "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _recap(done)["changed"] >= 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_pip_wheel_of_the_repository_root_provides_the_entrypoint(tmp_path):
    """What the Containerfile's build stage runs, minus the dependencies (pip fetches the build backend)."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--wheel-dir", str(tmp_path), str(REPO_ROOT)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("okera_auth-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(name for name in archive.namelist() if name.endswith("entry_points.txt"))
        assert "okera-authserver = okera_auth.authserver.cli:main" in archive.read(entry_points).decode()
        assert "okera_auth/module_utils/tokens.py" in archive.namelist()
        assert "okera_auth/authserver/app.py" in archive.namelist()
        assert "okera_auth/authserver/manual.py" in archive.namelist()
        assert "okera_auth/examples/myservice.py" in archive.namelist()  # the tutorial's service, in the image


@pytest.fixture(name="sandbox")
def sandbox_fixture(tmp_path):
    cluster = Sandbox(tmp_path / "sandbox")
    try:
        yield cluster
    finally:
        cluster.stop()


def _daemon_env_in_cluster(sandbox, name: str) -> Dict[str, str]:
    deployment = sandbox.apps().read_namespaced_deployment(name, "default")
    (daemon,) = [c for c in deployment.spec.template.spec.containers if c.name == "authserver"]
    return {entry.name: entry.value for entry in daemon.env}


@pytest.mark.slow
def test_apply_to_the_sandbox_creates_then_keeps_then_replaces(render, sandbox, rsa_key_pem):
    apply = {"authserver_sidecar_kind": "Deployment", "authserver_sidecar_apply": True,
             "authserver_sidecar_output_dir": "", "authserver_sidecar_k8s_auth": {"kubeconfig": str(sandbox.kubeconfig)}}
    first = render(apply)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Deployment default token-client created" in first.stdout
    secret = sandbox.secret("token-client-authserver-key")
    assert base64.b64decode(secret.data["private.pem"]) == rsa_key_pem
    deployment = sandbox.apps().read_namespaced_deployment("token-client", "default")
    assert [c.name for c in deployment.spec.template.spec.containers] == ["authserver", "client"]
    assert deployment.spec.template.spec.security_context.fs_group == 2000
    assert _daemon_env_in_cluster(sandbox, "token-client")["OKERA_AUTHSERVER_TTL"] == "24h"

    again = render(apply)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _recap(again)["changed"] == 0
    assert "Deployment default token-client unchanged" in again.stdout

    shorter = render(dict(apply, authserver_sidecar_ttl="1h"))
    assert shorter.returncode == 0, shorter.stdout + shorter.stderr
    assert "Deployment default token-client replaced" in shorter.stdout
    assert "Secret default token-client-authserver-key unchanged" in shorter.stdout
    assert _daemon_env_in_cluster(sandbox, "token-client")["OKERA_AUTHSERVER_TTL"] == "1h"


@pytest.mark.slow
def test_apply_recreates_a_changed_pod(render, sandbox, rsa_key_pem):
    apply = {"authserver_sidecar_apply": True, "authserver_sidecar_output_dir": "",
             "authserver_sidecar_k8s_auth": {"kubeconfig": str(sandbox.kubeconfig)}}
    first = render(apply, "-vvv")
    assert first.returncode == 0, first.stdout + first.stderr
    assert base64.b64encode(rsa_key_pem).decode()[:40] not in first.stdout + first.stderr
    uid = sandbox.core().read_namespaced_pod("token-client", "default").metadata.uid
    changed = render(dict(apply, authserver_sidecar_algorithm="RS256"))
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "Pod default token-client recreated" in changed.stdout
    pod = sandbox.core().read_namespaced_pod("token-client", "default")
    assert pod.metadata.uid != uid
    (daemon,) = [c for c in pod.spec.containers if c.name == "authserver"]
    assert {e.name: e.value for e in daemon.env}["OKERA_AUTHSERVER_ALGORITHM"] == "RS256"


def _nowhere_kubeconfig(path: Path) -> Path:
    """A kubeconfig naming an API server that is not there (port 9, discard)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
        "users": [{"name": "x", "user": {"token": "not-a-real-token"}}]}))
    return path


def test_apply_failure_is_one_clear_line_without_the_key(render, tmp_path, rsa_key_pem):
    kubeconfig = _nowhere_kubeconfig(tmp_path / "nowhere.kubeconfig")
    done = render({"authserver_sidecar_apply": True, "authserver_sidecar_output_dir": "",
                   "authserver_sidecar_k8s_auth": {"kubeconfig": str(kubeconfig)}})
    assert done.returncode != 0
    assert "get Secret default/token-client-authserver-key: cannot connect to the API server at http://127.0.0.1:9" in done.stdout
    assert base64.b64encode(rsa_key_pem).decode()[:40] not in done.stdout + done.stderr


# --- booleans given as strings on the command line (-e name=false is the string "false") ------

ROLE_SPECS = REPO_ROOT / "roles" / "authserver_sidecar" / "meta" / "argument_specs.yml"
BOOLEAN_VARIABLES = ["authserver_sidecar_apply", "authserver_sidecar_automount_service_account_token",
                     "authserver_sidecar_disable_delete", "authserver_sidecar_existing_secret",
                     "authserver_sidecar_native_sidecar", "authserver_sidecar_render_containerfile",
                     "authserver_sidecar_render_secret"]


def test_the_string_test_below_covers_every_boolean_variable():
    options = yaml.safe_load(ROLE_SPECS.read_text())["argument_specs"]["main"]["options"]
    assert sorted(name for name, spec in options.items() if spec["type"] == "bool") == BOOLEAN_VARIABLES


def _extra_vars(values: Dict[str, str]) -> List[str]:
    return [arg for name, value in values.items() for arg in ("-e", "%s=%s" % (name, value))]


@pytest.mark.slow
def test_booleans_given_as_strings_with_e_mean_what_they_say(render, tmp_path, rsa_key_pem):
    out = tmp_path / "out"
    manifest = out / "token-client.yml"
    key_text = base64.b64encode(rsa_key_pem).decode()[:40]
    nowhere = {"authserver_sidecar_k8s_auth": {"kubeconfig": str(_nowhere_kubeconfig(tmp_path / "nowhere.kubeconfig"))}}

    # Every boolean "false": no Secret (and no key) in the file, an ordinary container, no token
    # automounted, files deleted, no Containerfile, nothing applied (the cluster is not there).
    done = render(nowhere, *_extra_vars({name: "false" for name in BOOLEAN_VARIABLES}))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [document["kind"] for document in _documents(manifest)] == ["Pod"]
    assert key_text not in manifest.read_text()
    pod = _objects({"x": out}, "x")["Pod"]
    assert "initContainers" not in pod["spec"] and pod["spec"]["automountServiceAccountToken"] is False
    assert _env(_containers(pod["spec"])["authserver"])["OKERA_AUTHSERVER_DISABLE_DELETE"] == "false"
    assert "okera.auth/private-key-sha256" in pod["metadata"]["annotations"]  # not an existing Secret: the key is read
    assert not (out / "Containerfile.okera-authserver").exists()

    # "true" (but existing_secret and apply): the Secret, a native sidecar, the token, kept files, a Containerfile.
    done = render(nowhere, *_extra_vars({name: "true" for name in BOOLEAN_VARIABLES
                                         if name not in ("authserver_sidecar_existing_secret", "authserver_sidecar_apply")}))
    assert done.returncode == 0, done.stdout + done.stderr
    objects = _objects({"x": out}, "x")
    assert base64.b64decode(objects["Secret"]["data"]["private.pem"]) == rsa_key_pem
    spec = objects["Pod"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["authserver"] and spec["automountServiceAccountToken"] is True
    assert _env(spec["initContainers"][0])["OKERA_AUTHSERVER_DISABLE_DELETE"] == "true"
    assert (out / "Containerfile.okera-authserver").exists()

    # existing_secret "true" and apply "true": no key needed or rendered, and applying is tried
    # (the Pod first: no Secret is applied), failing on the cluster that is not there.
    done = render(nowhere, *_extra_vars({"authserver_sidecar_existing_secret": "true", "authserver_sidecar_apply": "true",
                                         "authserver_sidecar_private_key_file": ""}))
    assert done.returncode != 0
    assert "get Pod default/token-client: cannot connect to the API server at http://127.0.0.1:9" in done.stdout
    assert [document["kind"] for document in _documents(manifest)] == ["Pod"]
    assert key_text not in manifest.read_text()
