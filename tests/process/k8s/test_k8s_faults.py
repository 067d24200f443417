"""The collection's cluster access under injected API server faults: what is asked again, what fails, in one line."""
from __future__ import annotations

import base64

import pytest

from okera_auth.module_utils._k8s.client import ClusterError, build_api_client, request, request_timeout
from okera_auth.module_utils._k8s.secrets import read_secret, set_secret_data

SECRET = "/api/v1/namespaces/default/secrets/secrets"


@pytest.fixture
def api(sandbox):
    sandbox.set_faults()
    yield build_api_client({"kubeconfig": str(sandbox.kubeconfig)})
    sandbox.set_faults()


def _faults_hit(sandbox) -> int:
    return (sandbox.state_dir / "server.log").read_text().count("fault: ")


def test_5xx_answers_to_reads_are_asked_again_until_the_retries_run_out(sandbox, api):
    sandbox.set_faults({"method": "GET", "path": SECRET, "status": 503, "retry_after": 0, "times": 3})
    assert read_secret(api, "default", "secrets").exists  # the fourth answer; Retry-After: 0 made it quick
    slept = []
    sandbox.set_faults({"method": "GET", "path": SECRET, "status": 500, "times": 2},
                       {"method": "GET", "path": SECRET, "status": 504, "after": 2, "times": 1})
    assert request(api, "get Secret default/secrets", "GET", SECRET, sleeper=slept.append)["metadata"]["name"] == "secrets"
    assert slept == [0.5, 1.0, 2.0]
    sandbox.set_faults({"method": "GET", "path": SECRET, "status": 503, "retry_after": 1})
    with pytest.raises(ClusterError) as raised:
        request(api, "get Secret default/secrets", "GET", SECRET, sleeper=slept.append)
    message = str(raised.value)
    assert raised.value.status == 503 and "\n" not in message
    assert "answered 503 the server is currently unable to handle the request (asked 4 times)" in message
    assert slept[3:] == [1.0, 1.0, 1.0]


def test_429_is_asked_again_for_writes_too_but_5xx_answers_to_writes_are_not(sandbox, api):
    before = _faults_hit(sandbox)
    sandbox.set_faults({"method": "PATCH", "path": SECRET, "status": 429, "retry_after": 0, "times": 2})
    result = set_secret_data(api, "default", "secrets", {"FAULTED": b"429"})
    assert result.changed and read_secret(api, "default", "secrets").data["FAULTED"] == b"429"
    sandbox.set_faults({"method": "PATCH", "path": SECRET, "status": 503, "times": 1})
    with pytest.raises(ClusterError) as raised:
        set_secret_data(api, "default", "secrets", {"FAULTED": b"503"})
    assert raised.value.status == 503 and not raised.value.write_unknown
    assert "asked" not in str(raised.value)
    assert read_secret(api, "default", "secrets").data["FAULTED"] == b"429"
    assert _faults_hit(sandbox) - before == 3


def test_a_409_storm_within_the_retries_is_ridden_out_and_beyond_them_changes_nothing(sandbox, api):
    sandbox.set_faults({"method": "PATCH", "path": SECRET, "status": 409, "times": 5})
    result = set_secret_data(api, "default", "secrets", {"STORM": b"five"}, conflict_retries=5)
    assert result.changed and result.conflicts == 5
    version = read_secret(api, "default", "secrets").resource_version
    sandbox.set_faults({"method": "PATCH", "path": SECRET, "status": 409, "times": 6})
    with pytest.raises(ClusterError) as raised:
        set_secret_data(api, "default", "secrets", {"STORM": b"six"}, conflict_retries=5)
    assert "kept changing under us (6 conflicts); run again" in str(raised.value)
    assert raised.value.status == 409 and not raised.value.write_unknown
    after = read_secret(api, "default", "secrets")
    assert after.data["STORM"] == b"five" and after.resource_version == version


def test_a_write_without_an_answer_is_flagged_as_maybe_stored(sandbox, api):
    sandbox.set_faults({"method": "PATCH", "path": SECRET, "drop": True, "processed": True, "times": 1})
    with pytest.raises(ClusterError) as raised:
        set_secret_data(api, "default", "secrets", {"LOST": b"answer"})
    assert raised.value.status is None and raised.value.write_unknown
    assert "closed the connection without an answer" in str(raised.value)
    assert "Connection aborted" not in str(raised.value)
    assert read_secret(api, "default", "secrets").data["LOST"] == b"answer"
    # The read before the patch failing sends no write: nothing can have been stored.
    sandbox.set_faults({"method": "GET", "path": SECRET, "drop": True, "times": 1})
    with pytest.raises(ClusterError) as raised:
        set_secret_data(api, "default", "secrets", {"LOST": b"never"})
    assert not raised.value.write_unknown
    assert base64.b64encode(b"never").decode() not in str(raised.value)


def test_a_slow_api_is_waited_for_up_to_the_request_timeout(sandbox, api, monkeypatch):
    sandbox.set_faults({"method": "GET", "path": SECRET, "delay": 1.5})
    monkeypatch.setenv("OKERA_AUTH_K8S_REQUEST_TIMEOUT", "3")
    assert read_secret(api, "default", "secrets").exists
    monkeypatch.setenv("OKERA_AUTH_K8S_REQUEST_TIMEOUT", "1")
    with pytest.raises(ClusterError) as raised:
        read_secret(api, "default", "secrets")
    assert raised.value.status is None and "\n" not in str(raised.value)
    assert "get Secret default/secrets: the API server at %s did not answer within 1 s" % sandbox.url in str(raised.value)
    assert "OKERA_AUTH_K8S_REQUEST_TIMEOUT" in str(raised.value)


@pytest.mark.parametrize("value, seconds", [("2.5", 2.5), ("", 30), ("0", 30), ("-1", 30), ("soon", 30), ("inf", 30)])
def test_the_request_timeout_comes_from_the_environment_when_it_is_a_positive_number(value, seconds):
    assert request_timeout({"OKERA_AUTH_K8S_REQUEST_TIMEOUT": value}) == seconds
