"""The cronjob entry point (playbooks/render_rotation_cronjob.yml): manifests that validate against the
Kubernetes schemas, a hardened CronJob, objects applied to a sandbox (and left alone the second time), and
the rotation run as the CronJob's pod runs it - the in-cluster service account, the inventory from the
ConfigMap, the key from its Secret - whose every request the rendered Role allows, and nothing more."""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import yaml
from playbook_runs import REPO_ROOT, recap

from sandbox_cluster import Sandbox

pytestmark = pytest.mark.slow

PLAYBOOK = REPO_ROOT / "playbooks" / "render_rotation_cronjob.yml"
KUBERNETES_VERSION = "1.32.0"  # the API version the sandbox serves; the schemas ship with kubernetes-validate
IMAGE = "registry.example.com/okera/okera-auth-rotation:0.1.0"
WORKLOADS = ["cdas-rest-server", "cerebro-planner", "cerebro-worker"]


class Request(NamedTuple):
    """What RBAC sees of one API request."""

    verb: str
    group: str
    resource: str
    namespace: Optional[str]
    name: Optional[str]


def api_requests(log_text: str) -> List[Request]:
    """The Kubernetes API requests in a sandbox's server.log (started with --verbose), as RBAC names them."""
    found = []
    for method, target in re.findall(r'"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]"', log_text):
        url = urlsplit(target)
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            continue  # discovery, or Okera's REST API (/api/info, /api/databases): not RBAC's business
        namespace = None
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
            namespace, rest = rest[1], rest[2:]
        resource, name = rest[0], (rest[1] if len(rest) > 1 else None)
        if len(rest) > 2:
            resource += "/" + rest[2]
        watch = parse_qs(url.query).get("watch", ["false"])[0] in ("true", "1")
        verb = {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}[method]
        found.append(Request(verb, group, resource, namespace, name))
    return found


def allows(rule: dict, request: Request) -> bool:
    """RBAC's PolicyRule match (no wildcards: the rendered rules must not use any)."""
    return (request.group in rule["apiGroups"] and request.resource in rule["resources"]
            and request.verb in rule["verbs"]
            and (not rule.get("resourceNames") or request.name in rule["resourceNames"]))


@pytest.fixture
def sandbox(tmp_path):
    cluster = Sandbox(tmp_path / "sandbox", token_ttl="2d", extra_start=["--verbose"])
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def signing_key_secret(sandbox):
    """The signing key in a Secret of the namespace, as an operator keeps it for the CronJob."""
    sandbox.core().create_namespaced_secret("default", {
        "metadata": {"name": "okera-jwt-signing"},
        "data": {"private.pem": base64.b64encode(sandbox.signing_key.read_bytes()).decode()}})
    return {"name": "okera-jwt-signing", "key": "private.pem"}


def _inventory(tmp_path: Path, sandbox: Sandbox, key_secret: dict, **variables) -> Path:
    host = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "system_token_kubeconfig": str(sandbox.kubeconfig), "system_token_private_key_secret": key_secret,
                 "system_token_restart_kinds": ["Deployment", "StatefulSet"],
                 "system_token_restart_names": WORKLOADS, "system_token_wait_sleep": 1,
                 "system_token_cronjob_image": IMAGE, "system_token_cronjob_output_dir": str(tmp_path / "rendered"),
                 "system_token_cronjob_apply": True}, **variables)
    path = tmp_path / "clusters.yml"
    path.write_text(yaml.safe_dump({"okera_clusters": {"hosts": {"sandbox-eu": host}}}))
    return path


def _documents(path: Path) -> Dict[Tuple[str, str, str], dict]:
    return {(document["kind"], document["metadata"]["namespace"], document["metadata"]["name"]): document
            for document in yaml.safe_load_all(path.read_text()) if document}


def _pod(sandbox: Sandbox, cronjob: dict, tmp_path: Path, collections: Path) -> Tuple[List[str], Dict[str, str], Path]:
    """(command, environment, working directory) of the CronJob's container run here as its pod would run
    it: the inventory from the ConfigMap in the cluster and the key from its Secret (the mounts), the
    service account token and CA in a pod's layout, KUBERNETES_SERVICE_HOST/PORT, the container's
    environment, and no kubeconfig."""
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    root = tmp_path / "pod"
    inventory_dir = root / mounts["inventory"].lstrip("/")
    inventory_dir.mkdir(parents=True)
    config_map = sandbox.core().read_namespaced_config_map(volumes["inventory"]["configMap"]["name"], "default")
    for key, text in config_map.data.items():
        (inventory_dir / key).write_text(text)
    key_dir = root / mounts["signing-key"].lstrip("/")
    key_dir.mkdir(parents=True)
    secret_volume = volumes["signing-key"]["secret"]
    secret = sandbox.core().read_namespaced_secret(secret_volume["secretName"], "default")
    for item in secret_volume["items"]:
        (key_dir / item["path"]).write_bytes(base64.b64decode(secret.data[item["key"]]))
        os.chmod(key_dir / item["path"], secret_volume["defaultMode"])
    account = root / "var/run/secrets/kubernetes.io/serviceaccount"
    account.mkdir(parents=True)
    (account / "token").write_text((sandbox.state_dir / "admin.token").read_text().strip())
    (account / "ca.crt").write_bytes((sandbox.state_dir / "ca.crt").read_bytes())
    (account / "namespace").write_text("default")
    (root / "tmp").mkdir()

    server = urlsplit(sandbox.url)
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith(("K8S_AUTH_", "ANSIBLE_")) and name != "KUBECONFIG"}
    environ.update({entry["name"]: entry["value"].replace("/tmp", str(root / "tmp")) for entry in container["env"]})
    # The image's python3 is first on the pod's PATH; here the tests' Python stands in for it.
    environ["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), environ.get("PATH", "")))
    environ.update(ANSIBLE_COLLECTIONS_PATH=str(collections), KUBERNETES_SERVICE_HOST=server.hostname,
                   KUBERNETES_SERVICE_PORT=str(server.port), OKERA_AUTH_SERVICE_ACCOUNT_DIR=str(account))
    # The pod's absolute paths live under `root` here: point the inventory and the key there.
    args = [str(root) + arg if arg.startswith(mounts["inventory"]) else arg for arg in container["args"]]
    key_path = yaml.safe_load((inventory_dir / "inventory.yml").read_text())[
        "okera_clusters"]["hosts"]["sandbox-eu"]["system_token_private_key_path"]
    command = [str(Path(sys.executable).with_name(container["command"][0]))] + args + [
        "-e", "system_token_private_key_path=%s" % (str(root) + key_path)]
    return command, environ, root


RESTART_MODES = {
    "rollout": ({}, {("apps", "deployments", "patch"), ("apps", "statefulsets", "patch")}),
    "delete_pods": ({"system_token_restart_mode": "delete_pods", "system_token_restart_names": [],
                     "system_token_restart_label_selector": "app.kubernetes.io/part-of=okera"},
                    {("", "pods", "list"), ("", "pods", "delete")}),
}


@pytest.mark.parametrize("mode", sorted(RESTART_MODES))
def test_render_apply_and_run_the_rotation_as_its_pod_with_exactly_the_permissions_it_needs(
        sandbox, signing_key_secret, run_playbook, tmp_path, collections_path, mode):
    variables, restart_grants = RESTART_MODES[mode]
    inventory = _inventory(tmp_path, sandbox, signing_key_secret, **variables)
    done = run_playbook(PLAYBOOK, "-i", str(inventory))
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = tmp_path / "rendered" / "okera-system-token-rotation-sandbox-eu.yml"
    documents = _documents(rendered)
    assert sorted(documents) == [
        ("ConfigMap", "default", "okera-system-token-rotation-inventory"),
        ("CronJob", "default", "okera-system-token-rotation"),
        ("Role", "default", "okera-system-token-rotation"),
        ("RoleBinding", "default", "okera-system-token-rotation"),
        ("ServiceAccount", "default", "okera-system-token-rotation")]
    for document in documents.values():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)

    # Applied: the cluster holds what was rendered; a second run changes nothing.
    assert "CronJob default okera-system-token-rotation created" in done.stdout
    from kubernetes import client, config
    api = config.new_client_from_config(str(sandbox.kubeconfig))
    live = client.BatchV1Api(api).read_namespaced_cron_job("okera-system-token-rotation", "default")
    assert live.spec.concurrency_policy == "Forbid" and live.spec.schedule == "15 3 * * *"
    role = client.RbacAuthorizationV1Api(api).read_namespaced_role("okera-system-token-rotation", "default")
    assert [rule.verbs for rule in role.rules] == [rule["verbs"] for rule in
                                                   documents[("Role", "default", "okera-system-token-rotation")]["rules"]]
    again = run_playbook(PLAYBOOK, "-i", str(inventory))
    assert again.returncode == 0 and recap(again.stdout)["sandbox-eu"]["changed"] == 0, again.stdout
    assert again.stdout.count(" unchanged") == 5

    # The rotation, run as the CronJob's pod runs it; only its own requests are logged from here on.
    old_token = sandbox.secret_value()
    cronjob = documents[("CronJob", "default", "okera-system-token-rotation")]
    command, environ, workdir = _pod(sandbox, cronjob, tmp_path, collections_path)
    log = sandbox.state_dir / "server.log"
    start = log.stat().st_size
    pod_run = subprocess.run(command, capture_output=True, text=True, env=environ, cwd=workdir, timeout=600,
                             check=False)
    assert pod_run.returncode == 0, pod_run.stdout[-5000:] + pod_run.stderr
    assert sandbox.secret_value() != old_token, "the token was rotated"
    assert recap(pod_run.stdout)["sandbox-eu"]["failed"] == 0
    assert old_token not in pod_run.stdout + pod_run.stderr

    with open(log, encoding="utf-8") as handle:
        handle.seek(start)
        requests = api_requests(handle.read())
    rules = documents[("Role", "default", "okera-system-token-rotation")]["rules"]
    assert requests, "the sandbox logged the rotation's requests"
    denied = [request for request in requests if not any(allows(rule, request) for rule in rules)]
    assert denied == [], "the Role must allow every request of the rotation"
    # ... and nothing else: every verb, resource and name it grants is used.
    granted = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    used = {(request.group, request.resource, request.verb) for request in requests}
    assert granted == used and restart_grants <= granted
    for rule in rules:
        for name in rule.get("resourceNames", []):
            assert any(allows(rule, request) and request.name == name for request in requests), (rule, name)
    assert {request.namespace for request in requests} == {"default"}
    assert not any("*" in value for rule in rules for field in rule.values() for value in field)


def test_the_cronjob_and_its_pod_are_hardened(sandbox, signing_key_secret, run_playbook, tmp_path):
    inventory = _inventory(tmp_path, sandbox, signing_key_secret, system_token_cronjob_apply=False,
                           system_token_cronjob_time_zone="Etc/UTC", system_token_cronjob_schedule="0 */6 * * *",
                           system_token_cronjob_labels={"team": "data"},
                           system_token_cronjob_extra_vars={"system_token_ttl": "14d"})
    done = run_playbook(PLAYBOOK, "-i", str(inventory))
    assert done.returncode == 0, done.stdout + done.stderr
    documents = _documents(tmp_path / "rendered" / "okera-system-token-rotation-sandbox-eu.yml")
    cronjob = documents[("CronJob", "default", "okera-system-token-rotation")]
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("0 */6 * * *", "Etc/UTC", "Forbid")
    assert spec["startingDeadlineSeconds"] == 3600
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 3600
    pod = job["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                      "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True, "privileged": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["command"] == ["ansible-playbook"]
    assert container["args"][-1] == "okera.auth.rotate_system_token"
    assert pod["serviceAccountName"] == "okera-system-token-rotation" and pod["restartPolicy"] == "Never"
    key_volume = {volume["name"]: volume for volume in pod["volumes"]}["signing-key"]["secret"]
    assert key_volume == {"secretName": "okera-jwt-signing", "items": [{"key": "private.pem", "path": "private.pem"}],
                          "defaultMode": 0o440}
    assert {mount["mountPath"]: mount.get("readOnly", False) for mount in container["volumeMounts"]} == {
        "/etc/okera-auth/inventory": True, "/etc/okera-auth/signing-key": True, "/tmp": False}
    assert all(document["metadata"]["labels"]["team"] == "data" for document in documents.values())

    inventory_text = documents[("ConfigMap", "default", "okera-system-token-rotation-inventory")]["data"]["inventory.yml"]
    host = yaml.safe_load(inventory_text)["okera_clusters"]["hosts"]["sandbox-eu"]
    assert host["system_token_ttl"] == "14d" and host["system_token_backup"] is False
    assert host["system_token_private_key_path"] == "/etc/okera-auth/signing-key/private.pem"
    assert "system_token_kubeconfig" not in host and "system_token_private_key_secret" not in host
    assert sandbox.signing_key.read_text().splitlines()[1] not in (tmp_path / "rendered").joinpath(
        "okera-system-token-rotation-sandbox-eu.yml").read_text()

    containerfile = (tmp_path / "rendered" / "Containerfile.okera-auth-rotation").read_text()
    lines = [line for line in containerfile.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM python:3.12-slim AS build" and "USER 65532:65532" in lines
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", containerfile, re.MULTILINE):
        for path in source.split():
            assert (REPO_ROOT / path).exists(), "the Containerfile copies %s, missing from the repository" % path


@pytest.mark.parametrize("variables, message", [
    ({"system_token_cronjob_image": None}, "the cronjob entry point needs system_token_cronjob_image"),
    ({"system_token_private_key_secret": {}}, "system_token_private_key_secret {name, key}"),
    ({"system_token_private_key_secret": {"name": "k", "key": "p", "namespace": "elsewhere"}},
     "in system_token_cronjob_namespace"),
    ({"system_token_cronjob_extra_vars": {"system_token_private_key_passphrase": "x"}}, "no secrets"),
    ({"system_token_cronjob_schedule": "daily"}, "a cron system_token_cronjob_schedule"),
    ({"system_token_cronjob_run_as_user": 0}, "system_token_cronjob_run_as_user"),
], ids=["no_image", "no_key_secret", "key_elsewhere", "secret_in_extra_vars", "schedule", "root"])
def test_bad_variables_are_refused_before_anything_is_rendered(sandbox, signing_key_secret, run_playbook, tmp_path,
                                                               variables, message):
    inventory = _inventory(tmp_path, sandbox, signing_key_secret, **variables)
    done = run_playbook(PLAYBOOK, "-i", str(inventory))
    assert done.returncode != 0 and message in done.stdout, done.stdout[-3000:]
    assert not (tmp_path / "rendered").exists()
