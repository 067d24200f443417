"""system_token_plan reading the cluster itself: the token Secret, the configuration Secret and the REST API's address."""
from __future__ import annotations

import base64
import json

import pytest

from okera_auth.module_utils._k8s.secrets import value_hash


@pytest.fixture
def plan():
    from ansible_collections.okera.auth.plugins.modules import system_token_plan
    return system_token_plan


@pytest.fixture
def args(sandbox):
    return {"kubeconfig": str(sandbox.kubeconfig), "secret": {"name": "secrets"}, "secret_keys": ["SYSTEM_TOKEN_0"],
            "config_secret": {"name": "okera-config"}, "config_name": "Secret default/okera-config",
            "rest_service": {}}


def test_reads_the_token_the_configuration_and_the_rest_api_in_one_run(plan, run_module, args, sandbox):
    token = sandbox.secret_value()
    result, failed = run_module(plan, dict(args, force=True))
    assert not failed, result["msg"] if failed else ""
    assert result["plan"][0]["valid"] and result["rotate_keys"] == ["SYSTEM_TOKEN_0"] and result["algorithm"] == "RS512"
    assert result["catalog_admins_from"] == "CATALOG_ADMINS of Secret default/okera-config"
    assert result["current"]["data"] == {"SYSTEM_TOKEN_0": token}
    assert result["current"]["hashes"] == {"SYSTEM_TOKEN_0": value_hash(token.encode())}
    assert result["rest"] == {"needed": True, "url_found": True, "url": sandbox.rest_url,
                              "url_from": "Service default/cdas-rest-server"}
    assert result["unfinished"] is None


def test_the_rest_api_is_looked_up_only_when_the_cluster_will_be_checked(plan, run_module, args):
    result, failed = run_module(plan, dict(args, rotate_before="1d"))
    assert not failed and result["rotate_keys"] == [] and result["rest"] == {"needed": False}


def test_a_missing_rest_service_is_reported_not_failed(plan, run_module, args):
    result, failed = run_module(plan, dict(args, force=True, rest_service={"name": "nothing-here"}))
    assert not failed and result["rest"] == {"needed": True, "url_found": False,
                                             "reason": "Service default/nothing-here does not exist"}


def test_a_given_rest_url_needs_no_service(plan, run_module, args):
    result, failed = run_module(plan, dict(args, force=True, rest_service={"url": "https://okera.example.com:8083/",
                                                                           "name": "nothing-here"}))
    assert not failed and result["rest"]["url"] == "https://okera.example.com:8083" and result["rest"]["url_from"] == "given"


def test_a_missing_token_secret_names_what_to_check(plan, run_module, args):
    result, failed = run_module(plan, dict(args, secret={"name": "no-such-secret"}))
    assert failed and result["msg"] == (
        "Secret default/no-such-secret does not exist: check system_token_namespace, system_token_secret_name, "
        "system_token_secret_keys and the cluster (system_token_kubeconfig, system_token_context)")


def test_binary_data_under_a_token_key_is_refused_without_showing_it(plan, run_module, args, sandbox):
    binary = b"\xff\xfe" + b"secret-bytes"
    sandbox.core().patch_namespaced_secret("secrets", "default", {"data": {
        "SYSTEM_TOKEN_9": base64.b64encode(binary).decode()}})
    try:
        result, failed = run_module(plan, dict(args, secret_keys=["SYSTEM_TOKEN_0", "SYSTEM_TOKEN_9"]))
    finally:
        sandbox.core().patch_namespaced_secret("secrets", "default", {"data": {"SYSTEM_TOKEN_9": None}})
    assert failed and "Secret default/secrets holds binary data, not a token, under SYSTEM_TOKEN_9" in result["msg"]
    assert "secret-bytes" not in json.dumps(result)


def test_a_missing_signing_key_file_stops_it_before_the_cluster_is_read(plan, run_module, args, tmp_path):
    unreachable = dict(args, kubeconfig=str(tmp_path / "no-kubeconfig"), private_key_path=str(tmp_path / "key.pem"))
    result, failed = run_module(plan, unreachable)
    assert failed and result["msg"].startswith("system_token_private_key_path %s is not a file" % (tmp_path / "key.pem"))


def test_the_marker_of_an_unfinished_rotation_is_read_from_the_secret(plan, run_module, args, sandbox):
    token = sandbox.secret_value()
    marker = {"started": "2026-12-01T00:00:00Z", "by": "cluster0", "keys": {"SYSTEM_TOKEN_0": value_hash(token.encode())}}
    sandbox.core().patch_namespaced_secret("secrets", "default", {"metadata": {"annotations": {
        "okera.auth/rotation-unfinished": json.dumps(marker)}}})
    try:
        result, failed = run_module(plan, dict(args, rotate_before="1d"))
    finally:
        sandbox.core().patch_namespaced_secret("secrets", "default", {"metadata": {"annotations": {
            "okera.auth/rotation-unfinished": None}}})
    assert not failed and result["unfinished"]["same_tokens"] is True and result["unfinished"]["by"] == "cluster0"
    assert result["rest"]["needed"] is True and result["rest"]["url_found"] is True
