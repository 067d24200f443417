"""Injected faults as the official kubernetes Python client meets them, set with `okera-auth-sandbox fault`."""
from __future__ import annotations

import base64
import json
import time

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

SECRET_PATH = "/api/v1/namespaces/default/secrets/secrets"


@pytest.fixture
def core(sandbox) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=sandbox.kubeconfig))


@pytest.fixture
def fault(sandbox, run_cli):
    """fault(*options) adds a rule with the command line; the running server picks it up."""
    def add(*options: str) -> str:
        done = run_cli("fault", "--state-dir", sandbox.state.root, *options)
        assert done.returncode == 0, done.stderr
        return done.stdout
    return add


def _label_patch(value: str) -> dict:
    return {"metadata": {"labels": {"faulted": value}}}


def test_a_409_storm_is_a_real_conflict_then_the_write_goes_through(sandbox, core, fault):
    listed = fault("--method", "PATCH", "--path", SECRET_PATH, "--status", "409", "--times", "2")
    assert listed == "1. PATCH %s: answer 409 2 time(s)\n" % SECRET_PATH
    for _attempt in range(2):
        with pytest.raises(ApiException) as raised:
            core.patch_namespaced_secret("secrets", "default", _label_patch("yes"))
        status = json.loads(raised.value.body)
        assert raised.value.status == 409 and status["reason"] == "Conflict" and status["kind"] == "Status"
        assert status["message"].startswith('Operation cannot be fulfilled on secrets "secrets"')
    assert core.read_namespaced_secret("secrets", "default").metadata.labels.get("faulted") is None
    core.patch_namespaced_secret("secrets", "default", _label_patch("yes"))
    assert core.read_namespaced_secret("secrets", "default").metadata.labels["faulted"] == "yes"


def test_429_carries_retry_after_which_the_client_honours(sandbox, core, fault):
    fault("--method", "GET", "--path", "/api/v1/namespaces/default/configmaps", "--status", "429", "--retry-after", "1",
          "--times", "1")
    started = time.monotonic()
    assert core.list_namespaced_config_map("default").items == []
    assert time.monotonic() - started >= 1, "urllib3 waited Retry-After, then asked again"
    fault("--clear", "--method", "GET", "--path", "/api/v1/namespaces/default/configmaps", "--status", "429",
          "--retry-after", "7")
    configuration = client.Configuration()
    config.load_kube_config(config_file=sandbox.kubeconfig, client_configuration=configuration)
    configuration.retries = False
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(client.ApiClient(configuration)).list_namespaced_config_map("default")
    assert raised.value.status == 429 and raised.value.headers["Retry-After"] == "7"
    assert json.loads(raised.value.body)["details"] == {"retryAfterSeconds": 7}
    assert json.loads(raised.value.body)["reason"] == "TooManyRequests"


def test_5xx_answers_are_status_objects(sandbox, core, fault):
    fault("--method", "GET", "--path", SECRET_PATH, "--status", "500", "--times", "1")
    fault("--method", "GET", "--path", SECRET_PATH, "--status", "504", "--after", "1", "--times", "1")
    answers = []
    for _attempt in range(3):
        try:
            core.read_namespaced_secret("secrets", "default")
            answers.append(200)
        except ApiException as error:
            answers.append((error.status, json.loads(error.body)["reason"]))
    assert answers == [(500, "InternalError"), (504, "Timeout"), 200]


def test_a_dropped_connection_is_retried_by_the_client_and_a_killed_server_is_not(sandbox, core, fault):
    fault("--method", "GET", "--path", SECRET_PATH, "--drop", "--times", "1")
    # urllib3 retries a read that got no answer: one drop goes unnoticed.
    assert core.read_namespaced_secret("secrets", "default").metadata.name == "secrets"
    fault("--clear", "--method", "PATCH", "--path", SECRET_PATH, "--kill")
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.patch_namespaced_secret("secrets", "default", _label_patch("lost"))
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.read_namespaced_secret("secrets", "default")
    assert fault("--clear") == "okera-auth-sandbox: no faults in %s\n" % sandbox.state.faults
    assert "faulted" not in (core.read_namespaced_secret("secrets", "default").metadata.labels or {})


def test_a_write_carried_out_before_the_server_dies_is_stored_but_never_answered(sandbox, core, fault):
    fault("--method", "PATCH", "--path", SECRET_PATH, "--kill", "--processed")
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.patch_namespaced_secret("secrets", "default", {"data": {"EXTRA": base64.b64encode(b"x").decode()}})
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_namespaced_pod("default")
    fault("--clear")
    assert core.read_namespaced_secret("secrets", "default").data["EXTRA"] == base64.b64encode(b"x").decode()


def test_a_delay_slows_the_answer_and_a_client_timeout_gives_up(sandbox, core, fault):
    fault("--method", "GET", "--path", SECRET_PATH, "--delay", "1")
    started = time.monotonic()
    core.read_namespaced_secret("secrets", "default")
    assert time.monotonic() - started >= 1
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.read_namespaced_secret("secrets", "default", _request_timeout=0.3)
    fault("--clear")
    started = time.monotonic()
    core.read_namespaced_secret("secrets", "default")
    assert time.monotonic() - started < 1


def test_bad_fault_options_are_one_line_errors(sandbox, run_cli):
    done = run_cli("fault", "--state-dir", sandbox.state.root, "--path", "/api", "--status", "200")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "must be 400 or more" in done.stderr
    done = run_cli("fault", "--state-dir", sandbox.state.root, "--path", "/api")
    assert done.returncode == 1 and "needs status, drop, kill or delay" in done.stderr
