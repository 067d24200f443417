"""The simulated Okera cluster: pods read the token at start and are ready only if it verifies."""
from __future__ import annotations

import base64
import time

import pytest
from sandbox_harness import wait_until

from okera_auth.module_utils.keys import load_private_key
from okera_auth.sandbox.kubelet import is_ready
from okera_auth.sandbox.okera import FAULTS_CONFIGMAP, SERVICES, service_object, token_report
from okera_auth.sandbox.resources import CONFIGMAPS, DEPLOYMENTS, PODS, SECRETS, STATEFULSETS
from okera_auth.module_utils.tokens import SYSTEM_USER, Signer, TokenSpec, mint


def _token(private_key, ttl: int = 3600, now: float = None) -> str:
    spec = TokenSpec(subject=SYSTEM_USER, issuer="okera-sandbox", groups=["okera_catalog_admins"], ttl=ttl)
    return mint(Signer(private_key, "RS512"), spec, now=None if now is None else int(now)).token


def _signing_key(sandbox):
    with open(sandbox.state.signing_key, "rb") as handle:
        return load_private_key(handle.read())


def _store_token(sandbox, token: str) -> None:
    sandbox.store.patch(SECRETS, "default", "secrets", "application/merge-patch+json",
                        {"data": {"SYSTEM_TOKEN_0": base64.b64encode(token.encode()).decode()}})


def _restart(sandbox, rtype, name: str, stamp: str) -> None:
    sandbox.store.patch(rtype, "default", name, "application/strategic-merge-patch+json", {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})


def _pods(sandbox, app: str):
    return [pod for pod in sandbox.store.objects(PODS, "default") if pod["metadata"]["labels"]["app"] == app]


def _waiting_reasons(pod) -> list:
    return [status["state"]["waiting"]["reason"] for status in pod["status"].get("containerStatuses", [])
            if "waiting" in status["state"]]


def _crashing(sandbox, app: str):
    return [pod for pod in _pods(sandbox, app) if "CrashLoopBackOff" in _waiting_reasons(pod)]


def test_expired_token_after_restart_leaves_new_pods_not_ready_and_old_ones_serving(ready_sandbox):
    _store_token(ready_sandbox, _token(_signing_key(ready_sandbox), ttl=3600, now=time.time() - 7200))
    old = {pod["metadata"]["name"] for pod in _pods(ready_sandbox, "cdas-rest-server")}
    _restart(ready_sandbox, DEPLOYMENTS, "cdas-rest-server", "1")
    crashing = wait_until(lambda: _crashing(ready_sandbox, "cdas-rest-server"), what="a crashing new pod")
    message = crashing[0]["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"]
    assert "expired" in message
    assert crashing[0]["status"]["containerStatuses"][0]["restartCount"] >= 1
    # maxUnavailable rounds down to 0 for two replicas: both old pods keep serving.
    serving = {pod["metadata"]["name"] for pod in _pods(ready_sandbox, "cdas-rest-server") if is_ready(pod)}
    assert serving == old
    status = ready_sandbox.store.find(DEPLOYMENTS, "default", "cdas-rest-server")["status"]
    assert status["updatedReplicas"] == 1 and status["availableReplicas"] == 2
    assert status["observedGeneration"] == 2


def test_good_token_after_a_failed_restart_completes_the_rollout(ready_sandbox):
    key = _signing_key(ready_sandbox)
    _store_token(ready_sandbox, _token(key, ttl=3600, now=time.time() - 7200))
    _restart(ready_sandbox, DEPLOYMENTS, "cerebro-planner", "1")
    wait_until(lambda: _crashing(ready_sandbox, "cerebro-planner"), what="a crashing planner")
    _store_token(ready_sandbox, _token(key))
    _restart(ready_sandbox, DEPLOYMENTS, "cerebro-planner", "2")

    def complete():
        deployment = ready_sandbox.store.find(DEPLOYMENTS, "default", "cerebro-planner")
        pods = _pods(ready_sandbox, "cerebro-planner")
        return (len(pods) == 1 and is_ready(pods[0])
                and pods[0]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2"
                and deployment["status"].get("updatedReplicas") == 1)
    wait_until(complete, what="the planner's rollout")


def test_token_signed_with_another_key_is_refused(ready_sandbox, other_rsa_private_key):
    _store_token(ready_sandbox, _token(other_rsa_private_key))
    _restart(ready_sandbox, STATEFULSETS, "cerebro-worker", "1")
    crashing = wait_until(lambda: _crashing(ready_sandbox, "cerebro-worker"), what="a crashing worker")
    message = crashing[0]["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"]
    assert "signature" in message
    statefulset = ready_sandbox.store.find(STATEFULSETS, "default", "cerebro-worker")
    assert statefulset["status"]["updateRevision"] != statefulset["status"]["currentRevision"]
    report = token_report(ready_sandbox.store, "default")
    assert report["valid"] is False and report["subject"] == SYSTEM_USER


@pytest.mark.slow
def test_running_pods_fail_when_their_token_expires(ready_sandbox):
    # Long enough for the new pod to start even on a busy machine, short enough to wait for.
    _store_token(ready_sandbox, _token(_signing_key(ready_sandbox), ttl=6))
    for pod in _pods(ready_sandbox, "cerebro-planner"):
        ready_sandbox.store.delete(PODS, "default", pod["metadata"]["name"])
    wait_until(lambda: [pod for pod in _pods(ready_sandbox, "cerebro-planner") if is_ready(pod)],
               what="the planner to start with the short-lived token")
    crashing = wait_until(lambda: _crashing(ready_sandbox, "cerebro-planner"), timeout=20,
                          what="the planner to fail at expiry")
    assert not is_ready(crashing[0])


def test_pods_do_not_see_a_new_token_until_they_restart(ready_sandbox, other_rsa_private_key):
    _store_token(ready_sandbox, _token(other_rsa_private_key))
    time.sleep(1.0)  # many controller passes
    assert all(is_ready(pod) for pod in ready_sandbox.store.objects(PODS))


def test_missing_secret_is_create_container_config_error(ready_sandbox):
    ready_sandbox.store.delete(SECRETS, "default", "secrets")
    for pod in _pods(ready_sandbox, "cerebro-planner"):
        ready_sandbox.store.delete(PODS, "default", pod["metadata"]["name"])
    pods = wait_until(lambda: [pod for pod in _pods(ready_sandbox, "cerebro-planner")
                               if "CreateContainerConfigError" in _waiting_reasons(pod)],
                      what="CreateContainerConfigError")
    assert pods[0]["status"]["phase"] == "Pending"


@pytest.mark.parametrize("fault", [{"podsNeverReady": "true"},
                                   {"rejectTokensIssuedAfter": "2000-01-01T00:00:00Z"}])
def test_fault_configmap_makes_restarted_pods_fail(ready_sandbox, fault):
    ready_sandbox.store.create(CONFIGMAPS, "default", {"metadata": {"name": FAULTS_CONFIGMAP}, "data": fault})
    _restart(ready_sandbox, DEPLOYMENTS, "cerebro-planner", "1")
    crashing = wait_until(lambda: _crashing(ready_sandbox, "cerebro-planner"), what="a crashing planner")
    assert "sandbox fault" in crashing[0]["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"]


def test_token_report_has_claims_and_expiry_but_no_token(ready_sandbox):
    report = token_report(ready_sandbox.store, "default")
    assert report["valid"] and report["subject"] == SYSTEM_USER and report["issuer"] == "okera-sandbox"
    assert report["groups"] == ["okera_catalog_admins"]
    assert 2 * 86400 - 120 < report["expires_in"] <= 2 * 86400
    secret = ready_sandbox.store.find(SECRETS, "default", "secrets")
    token = base64.b64decode(secret["data"]["SYSTEM_TOKEN_0"]).decode()
    assert token not in repr(report) and token.split(".")[2] not in repr(report)


def test_a_cluster_broken_by_an_expired_token_recovers_after_rotation(ready_sandbox):
    key = _signing_key(ready_sandbox)
    _store_token(ready_sandbox, _token(key, ttl=3600, now=time.time() - 7200))
    for pod in ready_sandbox.store.objects(PODS):
        ready_sandbox.store.delete(PODS, "default", pod["metadata"]["name"])
    wait_until(lambda: len([pod for pod in ready_sandbox.store.objects(PODS)
                            if "CrashLoopBackOff" in _waiting_reasons(pod)]) == 5, what="every pod crashing")
    _store_token(ready_sandbox, _token(key))
    for rtype, name in ((DEPLOYMENTS, "cdas-rest-server"), (DEPLOYMENTS, "cerebro-planner"),
                        (STATEFULSETS, "cerebro-worker")):
        _restart(ready_sandbox, rtype, name, "rotated")

    def recovered():
        pods = ready_sandbox.store.objects(PODS)
        rest = ready_sandbox.store.find(DEPLOYMENTS, "default", "cdas-rest-server")["status"]
        workers = ready_sandbox.store.find(STATEFULSETS, "default", "cerebro-worker")["status"]
        return (len(pods) == 5 and all(is_ready(pod) for pod in pods)
                and rest.get("updatedReplicas") == rest.get("availableReplicas") == 2
                and workers["currentRevision"] == workers["updateRevision"])
    wait_until(recovered, timeout=20, what="every service to come back")


def test_ordered_ready_statefulset_waits_behind_a_crashing_pod(ready_sandbox, other_rsa_private_key):
    body = service_object(SERVICES[2], "default")
    body["metadata"]["name"] = "ordered"
    body["spec"].update(podManagementPolicy="OrderedReady", selector={"matchLabels": {"app": "ordered"}})
    body["spec"]["template"]["metadata"]["labels"]["app"] = "ordered"
    ready_sandbox.store.create(STATEFULSETS, "default", body)
    wait_until(lambda: len([pod for pod in _pods(ready_sandbox, "ordered") if is_ready(pod)]) == 2,
               what="two ordered pods")
    _store_token(ready_sandbox, _token(other_rsa_private_key))
    ready_sandbox.store.delete(PODS, "default", "ordered-0")
    wait_until(lambda: _crashing(ready_sandbox, "ordered"), what="ordered-0 crashing")
    survivor = ready_sandbox.store.find(PODS, "default", "ordered-1")["metadata"]["uid"]
    _restart(ready_sandbox, STATEFULSETS, "ordered", "1")
    time.sleep(1.5)  # many controller passes: the update must not start
    assert ready_sandbox.store.find(PODS, "default", "ordered-1")["metadata"]["uid"] == survivor
    status = ready_sandbox.store.find(STATEFULSETS, "default", "ordered")["status"]
    assert status.get("updatedReplicas", 0) == 0
