"""k8s_secret_data, k8s_secret_data_info and k8s_rollout_restart against a sandbox cluster."""
from __future__ import annotations

import base64
import json
import os
import stat
import subprocess

import pytest
import yaml

from okera_auth.module_utils._k8s.secrets import value_hash

VALUE = "a-secret-value-that-must-not-leak"


@pytest.fixture
def secret_data():
    from ansible_collections.okera.auth.plugins.modules import k8s_secret_data
    return k8s_secret_data


@pytest.fixture
def secret_info():
    from ansible_collections.okera.auth.plugins.modules import k8s_secret_data_info
    return k8s_secret_data_info


@pytest.fixture
def restart():
    from ansible_collections.okera.auth.plugins.modules import k8s_rollout_restart
    return k8s_rollout_restart


@pytest.fixture
def auth(sandbox):
    return {"kubeconfig": str(sandbox.kubeconfig)}


def test_sets_a_key_reports_hashes_only_and_is_idempotent(secret_data, run_module, auth, sandbox):
    args = dict(auth, name="secrets", data={"EXTRA": VALUE})
    result, failed = run_module(secret_data, args, diff=True)
    assert not failed and result["changed"] and result["changed_keys"] == ["EXTRA"]
    assert result["hashes"] == {"EXTRA": value_hash(VALUE.encode())}
    assert result["previous_hashes"] == {"EXTRA": None}
    assert result["diff"]["after"] == {"EXTRA": value_hash(VALUE.encode())}
    assert VALUE not in json.dumps(result)
    assert sandbox.secret_value("EXTRA") == VALUE
    assert sandbox.secret_value("SYSTEM_TOKEN_0"), "other keys are left alone"

    again, again_failed = run_module(secret_data, args)
    assert not again_failed and not again["changed"] and again["changed_keys"] == []


def test_expect_hashes_writes_only_over_the_expected_values(secret_data, run_module, auth, sandbox):
    marker = {"okera.auth/rotation-unfinished": "{}"}
    result, failed = run_module(secret_data, dict(auth, name="secrets", data={"CAS": "ours"}, annotations=marker))
    assert not failed
    ours = {"CAS": value_hash(b"ours")}
    # Someone else writes the key meanwhile: the marker stays, nothing is written, the key is named.
    sandbox.core().patch_namespaced_secret("secrets", "default", {"data": {"CAS": base64.b64encode(b"theirs").decode()}})
    version = sandbox.secret().metadata.resource_version
    unmark = dict(auth, name="secrets", annotations={"okera.auth/rotation-unfinished": None}, expect_hashes=ours)
    result, failed = run_module(secret_data, unmark)
    assert failed and result["unexpected_keys"] == ["CAS"] and result["write_unknown"] is False
    assert result["msg"] == ("Secret default/secrets no longer holds the expected value of CAS (changed meanwhile by "
                             "someone else): nothing was written")
    assert sandbox.secret().metadata.resource_version == version and "theirs" not in json.dumps(result)
    # A key expected absent (null) that is there fails too; the values expected, it writes.
    result, failed = run_module(secret_data, dict(unmark, expect_hashes={"CAS": None}))
    assert failed and result["unexpected_keys"] == ["CAS"]
    result, failed = run_module(secret_data, dict(unmark, expect_hashes={"CAS": value_hash(b"theirs"), "GONE": None}))
    assert not failed and result["changed_annotations"] == ["okera.auth/rotation-unfinished"]
    assert "okera.auth/rotation-unfinished" not in (sandbox.secret().metadata.annotations or {})
    run_module(secret_data, dict(auth, name="secrets", data={"CAS": None}))


def test_check_mode_predicts_and_changes_nothing(secret_data, run_module, auth, sandbox):
    version = sandbox.secret().metadata.resource_version
    result, failed = run_module(secret_data, dict(auth, name="secrets", data={"EXTRA2": "x"}), check_mode=True)
    assert not failed and result["changed"] and result["changed_keys"] == ["EXTRA2"]
    assert sandbox.secret().metadata.resource_version == version


def test_null_removes_a_key_and_backup_restores_it(secret_data, run_module, auth, sandbox, tmp_path):
    run_module(secret_data, dict(auth, name="secrets", data={"GONE": "old-value"}))
    result, failed = run_module(secret_data, dict(auth, name="secrets", data={"GONE": None}, backup=True,
                                                  backup_dir=str(tmp_path / "b"), backup_label="t"))
    assert not failed and result["changed_keys"] == ["GONE"]
    assert sandbox.secret_value("GONE") is None
    backup = result["backup_file"]
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert base64.b64decode(json.load(open(backup))["data"]["GONE"]) == b"old-value"
    # The restore the documentation gives, with the real kubectl.
    restored = subprocess.run(["kubectl", "--kubeconfig", str(sandbox.kubeconfig), "patch", "secret", "secrets",
                               "--type", "merge", "--patch-file", backup], capture_output=True, text=True, check=False)
    assert restored.returncode == 0, restored.stderr
    assert sandbox.secret_value("GONE") == "old-value"


def test_missing_secret_is_created_only_when_asked(secret_data, run_module, auth, sandbox):
    result, failed = run_module(secret_data, dict(auth, name="absent", data={"K": "v"}))
    assert failed and result["msg"] == "Secret default/absent does not exist: create it first, or set create: true"
    result, failed = run_module(secret_data, dict(auth, name="absent", data={"K": "v"}, create=True))
    assert not failed and result["created"] and sandbox.secret_value("K", name="absent") == "v"


def test_info_returns_values_only_with_return_content(secret_info, run_module, auth, sandbox):
    token = sandbox.secret_value()
    result, failed = run_module(secret_info, dict(auth, name="secrets", keys=["SYSTEM_TOKEN_0"]))
    assert not failed and result["key_names"] == ["SYSTEM_TOKEN_0"] and "data" not in result
    assert result["hashes"]["SYSTEM_TOKEN_0"] == value_hash(token.encode())
    assert token not in json.dumps(result)
    result, failed = run_module(secret_info, dict(auth, name="secrets", keys=["SYSTEM_TOKEN_0"], return_content=True))
    assert not failed and result["data"] == {"SYSTEM_TOKEN_0": token}


def test_info_names_the_missing_key_and_the_ones_there_are(secret_info, run_module, auth):
    result, failed = run_module(secret_info, dict(auth, name="secrets", keys=["SYSTEM_TOKEN_9"]))
    assert failed and result["msg"].startswith("Secret default/secrets has no key SYSTEM_TOKEN_9 (it has: ")


def test_wrong_api_key_is_a_401_line_without_the_key(secret_info, run_module, auth):
    result, failed = run_module(secret_info, dict(auth, name="secrets", api_key="not-the-token"))
    assert failed and "rejected the credentials (401 Unauthorized)" in result["msg"]
    assert "not-the-token" not in json.dumps(result)


def test_inline_kubeconfig_credentials_never_reach_the_result(secret_info, run_module, sandbox):
    kubeconfig = yaml.safe_load(sandbox.kubeconfig.read_text())
    bearer = kubeconfig["users"][0]["user"]["token"]
    result, failed = run_module(secret_info, {"kubeconfig": kubeconfig, "name": "secrets"})
    assert not failed and "SYSTEM_TOKEN_0" in result["key_names"]
    assert bearer not in json.dumps(result)


def test_restart_by_selector_waits_for_complete_rollouts(restart, run_module, auth, sandbox):
    result, failed = run_module(restart, dict(auth, label_selector="app.kubernetes.io/part-of=okera",
                                              wait_timeout=60, wait_sleep=1))
    assert not failed, result.get("msg")
    assert {item["name"] for item in result["restarted"]} == {"cdas-rest-server", "cerebro-planner", "cerebro-worker"}
    assert result["status"]["Deployment default/cdas-rest-server"] == "2/2 updated, 2/2 ready, 2/2 available"
    assert all(sandbox.restart_annotations().values())


def test_restart_check_mode_patches_nothing_and_unknown_names_fail(restart, run_module, auth, sandbox):
    before = sandbox.restart_annotations()
    result, failed = run_module(restart, dict(auth, kinds=["Deployment"], names=["cerebro-planner"]), check_mode=True)
    assert not failed and result["changed"] and result["restarted"][0]["name"] == "cerebro-planner"
    assert sandbox.restart_annotations() == before
    result, failed = run_module(restart, dict(auth, names=["no-such-service"]))
    assert failed and "no Deployment/StatefulSet/DaemonSet named no-such-service" in result["msg"]


def test_delete_pods_waits_for_ready_replacements(restart, run_module, auth, sandbox):
    old = {pod.metadata.uid for pod in sandbox.core().list_namespaced_pod("default", label_selector="app=cdas-rest-server").items}
    result, failed = run_module(restart, dict(auth, delete_pods=True, label_selector="app=cdas-rest-server",
                                              wait_timeout=60, wait_sleep=1))
    assert not failed, result.get("msg")
    assert len(result["deleted_pods"]) == 2 and result["status"]["pods"] == "2/2 replacement pod(s) ready"
    new = {pod.metadata.uid for pod in sandbox.core().list_namespaced_pod("default", label_selector="app=cdas-rest-server").items}
    assert new and not (new & old)


@pytest.fixture
def pod_log():
    from ansible_collections.okera.auth.plugins.modules import k8s_pod_log_info
    return k8s_pod_log_info


def test_pod_log_info_reads_each_ready_pod_of_a_workload_as_kubectl_logs(pod_log, run_module, auth, sandbox):
    result, failed = run_module(pod_log, dict(auth, name="cdas-rest-server", search=r"^\S+ (.+)$", return_log=True),
                                check_mode=True)
    assert not failed, result.get("msg")
    pods = {pod.metadata.name for pod in sandbox.core().list_namespaced_pod("default", label_selector=result["selector"]).items}
    assert {entry["name"] for entry in result["pods"]} == pods and len(pods) == 2
    for entry in result["pods"]:
        shown = subprocess.run(["kubectl", "--kubeconfig", str(sandbox.kubeconfig), "logs", entry["name"]],
                               capture_output=True, text=True, check=False)
        assert shown.returncode == 0 and entry["lines"] == shown.stdout.splitlines() and entry["lines"], shown.stderr
        assert entry["match"] == entry["lines"][-1] and entry["value"] == entry["lines"][-1].split(" ", 1)[1]

    # Waiting for the value the pods logged is done at once; another value fails at once, naming the pod.
    value = result["pods"][0]["value"]
    waited, failed = run_module(pod_log, dict(auth, name="cdas-rest-server", search=r"^\S+ (.+)$", expect=value))
    assert not failed and "lines" not in waited["pods"][0], waited.get("msg")
    wrong, failed = run_module(pod_log, dict(auth, label_selector=result["selector"], search=r"^\S+ (.+)$",
                                             expect="another value", wait_timeout=30))
    assert failed and wrong["msg"].startswith("pods in namespace default matching %s: " % result["selector"])
    assert "logged another value than another value" in wrong["msg"] and result["pods"][0]["name"] in wrong["msg"]


def test_pod_log_info_without_the_line_fails_after_the_wait_naming_the_pods(pod_log, run_module, auth, sandbox):
    result, failed = run_module(pod_log, dict(auth, name="cerebro-planner", search=r"kid=(\S+)", expect="abc",
                                              wait_timeout=1, wait_sleep=1))
    pods = sorted(pod.metadata.name for pod in sandbox.core().list_namespaced_pod("default", label_selector=result["selector"]).items)
    assert failed and result["msg"] == "Deployment default/cerebro-planner: no matching line yet from %s after 1 s; " \
        "raise wait_timeout, or look at the pods' logs" % ", ".join(pods)
    result, failed = run_module(pod_log, dict(auth, name="no-such-service"))
    assert failed and "read Deployment default/no-such-service" in result["msg"] and "404" in result["msg"]
