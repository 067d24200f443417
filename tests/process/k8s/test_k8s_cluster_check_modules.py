"""okera_rest_check and the annotations of k8s_secret_data(_info) against a sandbox cluster."""
from __future__ import annotations

import base64

import pytest


MARKER = "okera.auth/rotation-unfinished"


@pytest.fixture
def rest_check():
    from ansible_collections.okera.auth.plugins.modules import okera_rest_check
    return okera_rest_check


@pytest.fixture
def auth(sandbox):
    return {"kubeconfig": str(sandbox.kubeconfig)}


def test_finds_the_url_from_the_load_balancer_and_lists_the_databases(rest_check, run_module, auth, sandbox):
    token = sandbox.secret_value()
    result, failed = run_module(rest_check, dict(auth, token=token, subject="okera_system_user"))
    assert not failed, result
    assert result["url"] == sandbox.rest_url and result["url_from"] == "Service default/cdas-rest-server"
    assert (result["user"], result["database_count"], result["checked"]) == ("okera_system_user", 3, True)
    assert token not in str({key: value for key, value in result.items() if key != "invocation"})


def test_without_a_token_it_only_finds_the_url(rest_check, run_module, auth, sandbox):
    result, failed = run_module(rest_check, auth)
    assert not failed and result["checked"] is False and result["url"] == sandbox.rest_url


def test_a_token_the_cluster_does_not_accept_fails_at_once(rest_check, run_module, auth, sandbox):
    result, failed = run_module(rest_check, dict(auth, token="x.y.z", wait_timeout=30))
    assert failed and "/api/get-user answered 401" in result["msg"] and "attempts" not in result["msg"]


def test_a_missing_service_says_so(rest_check, run_module, auth):
    result, failed = run_module(rest_check, dict(auth, service_name="nothing-here"))
    assert failed and result["url_found"] is False
    assert result["msg"] == "cannot find the Okera REST API: Service default/nothing-here does not exist; give its " \
                            "URL in url"


def test_a_given_url_needs_no_cluster(rest_check, run_module, sandbox):
    result, failed = run_module(rest_check, {"url": sandbox.rest_url + "/", "token": sandbox.secret_value()})
    assert not failed and result["url_from"] == "given" and result["url"] == sandbox.rest_url


def test_annotations_go_in_with_the_data_and_are_read_only_by_name(run_module, auth, sandbox):
    from ansible_collections.okera.auth.plugins.modules import k8s_secret_data, k8s_secret_data_info

    args = dict(auth, name="secrets", data={"EXTRA_KEY": "v1"}, annotations={MARKER: '{"keys": {}}'})
    result, failed = run_module(k8s_secret_data, args)
    assert not failed and result["changed"] and result["changed_annotations"] == [MARKER]
    assert result["previous_annotations"] == {MARKER: None}
    metadata = sandbox.secret().metadata
    assert metadata.annotations[MARKER] == '{"keys": {}}'
    assert base64.b64decode(sandbox.secret().data["EXTRA_KEY"]) == b"v1"

    read, failed = run_module(k8s_secret_data_info, dict(auth, name="secrets", keys=["EXTRA_KEY"], annotations=[MARKER]))
    assert not failed and read["annotations"] == {MARKER: '{"keys": {}}'}
    read, failed = run_module(k8s_secret_data_info, dict(auth, name="secrets", keys=["EXTRA_KEY"]))
    assert read["annotations"] == {}, "only the annotations asked for"

    again, failed = run_module(k8s_secret_data, args)
    assert not failed and not again["changed"]
    removed, failed = run_module(k8s_secret_data, dict(auth, name="secrets", annotations={MARKER: None}))
    assert not failed and removed["changed"] and removed["changed_keys"] == []
    assert MARKER not in (sandbox.secret().metadata.annotations or {})
    empty, failed = run_module(k8s_secret_data, dict(auth, name="secrets"))
    assert failed and "data and annotations are empty" in empty["msg"]
