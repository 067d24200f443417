"""Okera's REST API in the sandbox: found through Service cdas-rest-server, answering from ready pods."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.request

import pytest
from sandbox_harness import wait_until

from okera_auth.module_utils.keys import load_private_key
from okera_auth.module_utils.tokens import SYSTEM_USER, Signer, TokenSpec, mint
from okera_auth.sandbox.kubelet import container_log, is_ready
from okera_auth.sandbox.okera import FAULTS_CONFIGMAP, token_report
from okera_auth.sandbox.resources import CONFIGMAPS, PODS, SECRETS


def _call(url: str, path: str, token: str = None, method: str = "GET", body: bytes = None):
    """(status, JSON answer) of one request to the REST API."""
    request = urllib.request.Request(url + path, data=body, method=method)
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _signing_key(sandbox):
    with open(sandbox.state.signing_key, "rb") as handle:
        return load_private_key(handle.read())


def _token(key, subject: str = SYSTEM_USER, groups=("okera_catalog_admins",), ttl: int = 3600, now=None) -> str:
    spec = TokenSpec(subject=subject, issuer="okera-sandbox", groups=list(groups), ttl=ttl)
    return mint(Signer(key, "RS512"), spec, now=None if now is None else int(now)).token


def _answer_saying(url: str, path: str, token: str, words: str):
    """A function giving the (status, answer) of a request when its message holds ``words``, else None."""
    def ask():
        answer = _call(url, path, token)
        return answer if isinstance(answer[1], dict) and words in answer[1].get("message", "") else None
    return ask


def _system_token(sandbox) -> str:
    secret = sandbox.store.find(SECRETS, "default", "secrets")
    return base64.b64decode(secret["data"]["SYSTEM_TOKEN_0"]).decode()


def _discovered_url(sandbox) -> str:
    """http://<ingress>:<port> of Service cdas-rest-server, read with the official Python client."""
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(sandbox.kubeconfig))

    def balanced():
        service = core.read_namespaced_service("cdas-rest-server", "default")
        return service if service.status.load_balancer.ingress else None
    service = wait_until(balanced, what="the load balancer's ingress")
    assert service.spec.type == "LoadBalancer" and service.spec.ports[0].target_port == 8083
    return "http://%s:%d" % (service.status.load_balancer.ingress[0].ip, service.spec.ports[0].port)


def test_the_service_names_the_port_the_rest_listener_bound(ready_sandbox):
    url = _discovered_url(ready_sandbox)
    assert url == ready_sandbox.server.rest_url
    status, info = _call(url, "/api/info")
    assert status == 200 and info["is_jwt_enabled"] is True and info["version"]


def test_the_system_token_gets_its_user_and_the_databases(ready_sandbox):
    url, token = ready_sandbox.server.rest_url, _system_token(ready_sandbox)
    assert _call(url, "/api/get-user", token) == (200, {"user": SYSTEM_USER})
    status, databases = _call(url, "/api/databases", token)
    assert status == 200 and {"default", "okera_sample", "okera_system"} <= set(databases)
    assert _call(url, "/api/databases", token, "POST", b'{"filter": null}') == (200, databases)


def test_a_user_token_is_checked_against_the_clusters_keys(ready_sandbox):
    url = ready_sandbox.server.rest_url
    user = _token(_signing_key(ready_sandbox), subject="alice", groups=["analysts"])
    assert _call(url, "/api/get-user", user) == (200, {"user": "alice"})
    status, databases = _call(url, "/api/databases", user)
    assert status == 200 and "okera_system" not in databases and "default" in databases


@pytest.mark.parametrize("case", ["no header", "another key", "expired", "not a token", "basic auth"])
def test_tokens_that_do_not_verify_get_401_with_a_message(ready_sandbox, other_rsa_private_key, case):
    key = _signing_key(ready_sandbox)
    token = {"no header": None, "another key": _token(other_rsa_private_key),
             "expired": _token(key, ttl=60, now=time.time() - 3600), "not a token": "x.y.z",
             "basic auth": None}[case]
    request = urllib.request.Request(ready_sandbox.server.rest_url + "/api/databases")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if case == "basic auth":
        request.add_header("Authorization", "Basic " + base64.b64encode(b"admin:admin").decode())
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, timeout=30)
    body = json.loads(failed.value.read())
    assert failed.value.code == 401 and body["code"] == 401
    expected = {"no header": "Authorization: Bearer", "basic auth": "Authorization: Bearer",
                "another key": "signature does not verify", "expired": "expired", "not a token": "base64url"}[case]
    assert expected in body["message"]
    if token:
        assert token not in body["message"]


def test_503_while_the_rest_pods_run_with_a_token_the_cluster_refuses(ready_sandbox, other_rsa_private_key):
    url, good = ready_sandbox.server.rest_url, _system_token(ready_sandbox)
    ready_sandbox.store.patch(SECRETS, "default", "secrets", "application/merge-patch+json", {"data": {
        "SYSTEM_TOKEN_0": base64.b64encode(_token(other_rsa_private_key).encode()).decode()}})
    for pod in ready_sandbox.store.objects(PODS, "default"):
        if pod["metadata"]["labels"]["app"] == "cdas-rest-server":
            ready_sandbox.store.delete(PODS, "default", pod["metadata"]["name"])
    status, body = wait_until(_answer_saying(url, "/api/databases", good, "rejected"), what="503 naming the reason")
    assert status == 503 and "no cdas-rest-server pod is ready (2 pod(s): the system token was rejected: " \
        "the signature does not verify" in body["message"]
    assert _call(url, "/api/info")[0] == 503, "not even the public endpoint: the load balancer has no endpoint"
    # Put the good token back: the new pods start with it and the API answers again.
    ready_sandbox.store.patch(SECRETS, "default", "secrets", "application/merge-patch+json", {"data": {
        "SYSTEM_TOKEN_0": base64.b64encode(good.encode()).decode()}})
    wait_until(lambda: _call(url, "/api/databases", good)[0] == 200, timeout=20, what="the REST API back")


def test_a_system_token_without_a_catalog_admin_group_is_refused(ready_sandbox):
    url, good = ready_sandbox.server.rest_url, _system_token(ready_sandbox)
    config = ready_sandbox.store.find(SECRETS, "default", "okera-config")
    assert base64.b64decode(config["data"]["CATALOG_ADMINS"]) == b"okera_catalog_admins"
    outsider = _token(_signing_key(ready_sandbox), groups=["not_an_admin_group"])
    ready_sandbox.store.patch(SECRETS, "default", "secrets", "application/merge-patch+json", {"data": {
        "SYSTEM_TOKEN_0": base64.b64encode(outsider.encode()).decode()}})
    for pod in ready_sandbox.store.objects(PODS, "default"):
        if pod["metadata"]["labels"]["app"] == "cdas-rest-server":
            ready_sandbox.store.delete(PODS, "default", pod["metadata"]["name"])
    status, body = wait_until(_answer_saying(url, "/api/databases", good, "catalog admins"),
                              what="503 naming the catalog admins")
    assert status == 503 and "its groups (not_an_admin_group) include none of the catalog admins " \
        "(CATALOG_ADMINS: okera_catalog_admins)" in body["message"]
    pod = next(pod for pod in ready_sandbox.store.objects(PODS, "default")
               if pod["metadata"]["labels"]["app"] == "cdas-rest-server")
    log = "\n".join(container_log(ready_sandbox.store, pod, "rest-server"))
    assert "exiting: the system token was rejected: its groups (not_an_admin_group) include none of the " \
        "catalog admins" in log
    assert token_report(ready_sandbox.store, "default")["valid"] is False


def test_the_rest_fault_refuses_new_tokens_while_pods_stay_ready(ready_sandbox):
    url, key = ready_sandbox.server.rest_url, _signing_key(ready_sandbox)
    old = _token(key, now=time.time() - 120)
    ready_sandbox.store.create(CONFIGMAPS, "default", {"metadata": {"name": FAULTS_CONFIGMAP}, "data": {
        "restRejectsTokensIssuedAfter": str(int(time.time()) - 60)}})
    status, body = _call(url, "/api/databases", _token(key))
    assert status == 401 and "restRejectsTokensIssuedAfter" in body["message"]
    assert _call(url, "/api/databases", old)[0] == 200
    assert all(is_ready(pod) for pod in ready_sandbox.store.objects(PODS))


def test_unknown_paths_and_methods_are_json_errors(ready_sandbox):
    url, token = ready_sandbox.server.rest_url, _system_token(ready_sandbox)
    assert _call(url, "/api/tables", token)[0] == 404
    assert _call(url, "/api/get-user", token, "POST", b"{}")[0] == 405


def test_the_cli_prints_and_reports_where_the_rest_api_is(run_cli, tmp_path):
    """--load-balancer-ip (127.0.0.2 here, a loopback address too) is where the REST API answers,
    what Service cdas-rest-server's load balancer reports, and the only address it listens on."""
    state = str(tmp_path / "cli")
    run_cli("init", "--state-dir", state, "--token-ttl", "2d", check=True)
    started = run_cli("start", "--state-dir", state, "--pod-start-delay", "0.2", "--load-balancer-ip", "127.0.0.2",
                      check=True)
    try:
        assert "Okera REST API http://127.0.0.2:" in started.stdout

        def balanced():  # once the controllers wrote the Service's ingress
            rest = json.loads(run_cli("status", "--state-dir", state, "--json", check=True).stdout)["rest"]
            return rest if rest["load_balancer"] else None
        rest = wait_until(balanced, timeout=10, what="the load balancer's ingress")
        assert rest["service"] == "default/cdas-rest-server"
        assert rest["load_balancer"] == rest["url"].replace("http://", "") and rest["url"].startswith("http://127.0.0.2:")
        wait_until(lambda: _call(rest["url"], "/api/info")[0] == 200, timeout=20, what="ready REST pods")
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            _call(rest["url"].replace("127.0.0.2", "127.0.0.1"), "/api/info")
        text = run_cli("status", "--state-dir", state, check=True).stdout
        assert "Okera REST API: %s (Service default/cdas-rest-server" % rest["url"] in text
        report = json.loads(run_cli("status", "--state-dir", state, "--json", check=True).stdout)
        objects = json.loads((tmp_path / "cli" / "cluster.json").read_text())["objects"]
        secret = next(obj for obj in objects if obj["kind"] == "Secret" and obj["metadata"]["name"] == "secrets")
        stored = hashlib.sha256(base64.b64decode(secret["data"]["SYSTEM_TOKEN_0"])).hexdigest()
        # Each ready pod says which token it started with, as a hash.
        assert {pod["token_sha256"] for pod in report["pods"] if pod["ready"]} == {stored}
    finally:
        run_cli("stop", "--state-dir", state)
