"""The real kubectl against the sandbox: what the rotation and its tutorial use.

These tests skip (visibly, with the reason) only when kubectl is not installed; CI has it.
"""
from __future__ import annotations

import base64
import json

import pytest
from sandbox_harness import kubectl_runner, wait_until

from okera_auth.sandbox.kubelet import is_ready
from okera_auth.sandbox.resources import PODS


@pytest.fixture
def kubectl(kubectl_binary, ready_sandbox):
    return kubectl_runner(kubectl_binary, ready_sandbox.kubeconfig)


def _ok(done) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_get_secret_as_json(kubectl):
    secret = json.loads(_ok(kubectl("get", "secret", "secrets", "-o", "json")))
    assert secret["kind"] == "Secret"
    assert base64.b64decode(secret["data"]["SYSTEM_TOKEN_0"]).count(b".") == 2


def test_patch_secret_in_three_patch_types(kubectl):
    _ok(kubectl("patch", "secret", "secrets", "-p", '{"metadata":{"annotations":{"a":"1"}}}'))
    _ok(kubectl("patch", "secret", "secrets", "--type=merge", "-p", '{"data":{"B":"Mg=="}}'))
    _ok(kubectl("patch", "secret", "secrets", "--type=json",
                "-p", '[{"op":"replace","path":"/metadata/annotations/a","value":"3"}]'))
    secret = json.loads(_ok(kubectl("get", "secret", "secrets", "-o", "json")))
    assert secret["metadata"]["annotations"]["a"] == "3" and secret["data"]["B"] == "Mg=="


def test_rollout_restart_and_status_of_deployment_and_statefulset(kubectl, ready_sandbox):
    before = {pod["metadata"]["name"] for pod in ready_sandbox.store.objects(PODS)}
    for workload in ("deployment/cdas-rest-server", "statefulset/cerebro-worker"):
        assert "restarted" in _ok(kubectl("rollout", "restart", workload))
    for workload in ("deployment/cdas-rest-server", "statefulset/cerebro-worker"):
        out = _ok(kubectl("rollout", "status", workload, "--timeout=30s"))
        assert "successfully rolled out" in out or "roll out complete" in out
    pods = ready_sandbox.store.objects(PODS)
    assert all(is_ready(pod) for pod in pods if pod["metadata"]["labels"]["app"] == "cdas-rest-server")
    rest = {pod["metadata"]["name"] for pod in pods if pod["metadata"]["labels"]["app"] == "cdas-rest-server"}
    assert len(rest) == 2 and not rest & before


def test_get_pods_prints_the_usual_table(kubectl):
    lines = _ok(kubectl("get", "pods", "-l", "app=cerebro-worker")).splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line.split()[:3] for line in lines[1:]] == [["cerebro-worker-0", "1/1", "Running"],
                                                        ["cerebro-worker-1", "1/1", "Running"]]
    described = _ok(kubectl("describe", "pod", "cerebro-worker-0"))
    assert "Controlled By:  StatefulSet/cerebro-worker" in described
    assert any(line.split() == ["Ready", "True"] for line in described.splitlines())


def test_delete_pods_all_recreates_them_from_their_owners(kubectl, ready_sandbox):
    before = {pod["metadata"]["uid"] for pod in ready_sandbox.store.objects(PODS)}
    out = _ok(kubectl("delete", "pods", "--all", timeout=60))
    assert out.count("deleted") == 5

    def replaced():
        pods = ready_sandbox.store.objects(PODS)
        return len(pods) == 5 and all(is_ready(pod) for pod in pods) and not before & {
            pod["metadata"]["uid"] for pod in pods}
    wait_until(replaced, what="five new ready pods")
    _ok(kubectl("wait", "--for=condition=Ready", "pod", "--all", "--timeout=20s"))


def test_read_only_context_gets_forbidden(kubectl):
    done = kubectl("patch", "secret", "secrets", "-p", '{"data":{"X":"eA=="}}', context="okera-sandbox-readonly")
    assert done.returncode == 1
    assert "Forbidden" in done.stderr and "cannot patch resource \"secrets\"" in done.stderr
    _ok(kubectl("get", "secret", "secrets", context="okera-sandbox-readonly"))


def test_wrong_token_is_unauthorized(kubectl_binary, ready_sandbox):
    run = kubectl_runner(kubectl_binary, ready_sandbox.kubeconfig)
    done = run("--token", "wrong", "get", "pods")
    assert done.returncode == 1
    assert "must be logged in" in done.stderr or "Unauthorized" in done.stderr


def test_scale_and_get_all(kubectl, ready_sandbox):
    _ok(kubectl("scale", "deployment/cerebro-planner", "--replicas=2"))
    wait_until(lambda: len([pod for pod in ready_sandbox.store.objects(PODS)
                            if pod["metadata"]["labels"]["app"] == "cerebro-planner" and is_ready(pod)]) == 2,
               what="two planners")
    out = _ok(kubectl("get", "all"))
    assert "deployment.apps/cerebro-planner" in out and "statefulset.apps/cerebro-worker" in out


def test_server_dry_run_delete_keeps_the_secrets(kubectl, ready_sandbox):
    out = _ok(kubectl("delete", "secret", "--all", "--dry-run=server"))
    assert "(server dry run)" in out
    assert [secret["metadata"]["name"] for secret in json.loads(_ok(kubectl("get", "secrets", "-o", "json")))[
        "items"]] == ["okera-config", "secrets"]


def test_apply_a_manifest_twice_without_disabling_validation(kubectl, ready_sandbox, tmp_path):
    manifest = tmp_path / "configmap.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "applied"}, "data": {"a": "1"}}))
    assert "created" in _ok(kubectl("apply", "-f", str(manifest)))
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "applied"}, "data": {"a": "2"}}))
    assert "configured" in _ok(kubectl("apply", "-f", str(manifest)))
    stored = json.loads(_ok(kubectl("get", "configmap", "applied", "-o", "json")))
    assert stored["data"] == {"a": "2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]


def test_rollout_undo_reuses_the_previous_replicaset(kubectl):
    _ok(kubectl("set", "env", "deployment/cerebro-planner", "EXTRA=1"))
    _ok(kubectl("rollout", "status", "deployment/cerebro-planner", "--timeout=30s"))
    _ok(kubectl("rollout", "undo", "deployment/cerebro-planner"))
    _ok(kubectl("rollout", "status", "deployment/cerebro-planner", "--timeout=30s"))
    history = _ok(kubectl("rollout", "history", "deployment/cerebro-planner")).split()
    assert history[history.index("CHANGE-CAUSE") + 1:] == ["2", "<none>", "3", "<none>"]
    deployment = json.loads(_ok(kubectl("get", "deployment", "cerebro-planner", "-o", "json")))
    assert "EXTRA" not in [variable["name"] for variable in deployment["spec"]["template"]["spec"]["containers"][0]["env"]]
    replica_sets = json.loads(_ok(kubectl("get", "rs", "-l", "app=cerebro-planner", "-o", "json")))["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets) == [0, 1]


def test_logs_say_why_a_pod_is_not_ready(kubectl, ready_sandbox):
    assert "serving: the system token of okera_system_user verifies until" in _ok(
        kubectl("logs", "deployment/cerebro-planner"))
    expired = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJva2VyYV9zeXN0ZW1fdXNlciIsImV4cCI6MX0.c2ln"
    _ok(kubectl("patch", "secret", "secrets", "--type=merge",
                "-p", json.dumps({"data": {"SYSTEM_TOKEN_0": base64.b64encode(expired.encode()).decode()}})))
    _ok(kubectl("delete", "pod", "cerebro-worker-1"))
    wait_until(lambda: "exiting: the system token was rejected" in kubectl("logs", "cerebro-worker-1").stdout,
               what="the worker's failure in its log")
    assert expired not in kubectl("logs", "cerebro-worker-1").stdout


def test_get_service_shows_the_load_balancer_and_the_rest_port(kubectl, ready_sandbox):
    rest_port = ready_sandbox.server.rest.port
    row = wait_until(lambda: [line for line in _ok(kubectl("get", "svc", "--no-headers")).splitlines()
                              if line.startswith("cdas-rest-server") and "127.0.0.1" in line], what="an ingress")[0]
    assert row.split()[1] == "LoadBalancer" and row.split()[4].startswith("%d:" % rest_port)
    ingress = _ok(kubectl("get", "svc", "cdas-rest-server", "-o",
                          "jsonpath={.status.loadBalancer.ingress[0].ip}:{.spec.ports[0].port}"))
    assert ingress == "127.0.0.1:%d" % rest_port
