"""system_token_metrics against a Pushgateway stand-in on 127.0.0.1: the group it replaces, a failed check
that keeps the last findings, check mode, basic auth, and failures in one line."""
from __future__ import annotations

import json
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pushgateway_stub import PushgatewayStub

GROUP_PATH = "/metrics/job/okera_system_token/cluster/prod-eu"


@pytest.fixture
def module():
    from ansible_collections.okera.auth.plugins.modules import system_token_metrics
    return system_token_metrics


@pytest.fixture
def gateway():
    stub = PushgatewayStub().start()
    yield stub
    stub.stop()


def _plan(valid=True, expires_at="2027-01-15T08:00:00Z"):
    return [{"key": "SYSTEM_TOKEN_0", "present": True, "subject": "okera_system_user", "valid": valid,
             "expires_at": expires_at, "issued_at": "2026-12-16T08:00:00Z", "why": "more than 7d left"}]


def _args(url, **more):
    return dict({"cluster": "prod-eu", "namespace": "okera", "secret": "secrets", "secret_keys": ["SYSTEM_TOKEN_0"],
                 "pushgateway_url": url, "rotate_before": "7d", "alert_before": "3d"}, **more)


def _labels(**more):
    return frozenset(dict({"cluster": "prod-eu", "namespace": "okera", "secret": "secrets"}, **more).items())


TOKEN = _labels(key="SYSTEM_TOKEN_0", subject="okera_system_user")


def test_a_check_replaces_the_clusters_group_with_put(module, run_module, gateway):
    result, failed = run_module(module, _args(gateway.url, plan=_plan()))
    assert not failed and result["pushed"] and result["changed"]
    assert result["pushgateway_group_url"] == gateway.url + GROUP_PATH
    (push,) = gateway.pushes()
    assert (push.method, push.path) == ("PUT", GROUP_PATH)
    assert push.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {family.name for family in text_string_to_metric_families(push.body)}
    assert "okera_system_token_expiry_timestamp_seconds" in families
    values = gateway.values(job="okera_system_token", cluster="prod-eu")
    assert values[("okera_system_token_expiry_timestamp_seconds", TOKEN)] == 1_800_000_000
    assert values[("okera_system_token_valid", TOKEN)] == 1
    assert values[("okera_system_token_rotate_before_seconds", _labels())] == 7 * 86400

    again, _failed = run_module(module, _args(gateway.url, plan=_plan()))
    assert again["changed"] is False and again["pushed"], "the same findings: no change, the check time refreshed"
    assert [request.method for request in gateway.requests] == ["GET", "PUT", "GET", "PUT"]
    assert run_module(module, _args(gateway.url, plan=_plan(valid=False)))[0]["changed"] is True


def test_a_failed_check_posts_only_the_counter_and_the_findings_stay(module, run_module, gateway):
    run_module(module, _args(gateway.url, plan=_plan()))
    for expected in (1, 2):
        result, failed = run_module(module, _args(gateway.url, error="cannot connect to the API server"))
        assert not failed and result["read_errors"] == {"SYSTEM_TOKEN_0": expected}
        push = gateway.pushes()[-1]
        assert push.method == "POST"
        assert {family.name for family in text_string_to_metric_families(push.body)} == {
            "okera_system_token_read_errors"}
    values = gateway.values(job="okera_system_token", cluster="prod-eu")
    assert values[("okera_system_token_read_errors_total", _labels(key="SYSTEM_TOKEN_0"))] == 2
    assert values[("okera_system_token_expiry_timestamp_seconds", TOKEN)] == 1_800_000_000, "kept by POST"
    assert "cannot connect" not in json.dumps([request.body for request in gateway.requests])
    result, _failed = run_module(module, _args(gateway.url, plan=_plan()))
    assert result["read_errors"] == {"SYSTEM_TOKEN_0": 2}, "the counter goes on after the check recovers"


def test_check_mode_reads_but_pushes_nothing(module, run_module, gateway):
    result, failed = run_module(module, _args(gateway.url, plan=_plan()), check_mode=True, diff=True)
    assert not failed and result["changed"] and result["pushed"] is False
    assert [request.method for request in gateway.requests] == ["GET"]
    assert result["diff"]["before"] == "" and "okera_system_token_valid{" in result["diff"]["after"]


def test_with_a_textfile_too_both_get_the_same_series_and_the_file_keeps_the_counter(
        module, run_module, gateway, tmp_path):
    path = tmp_path / "okera.prom"
    result, failed = run_module(module, _args(gateway.url, plan=_plan(), textfile=str(path)))
    assert not failed and result["pushed"]
    assert [request.method for request in gateway.requests] == ["PUT"]
    assert gateway.pushes()[0].body == path.read_text()


def test_basic_auth_is_sent_and_the_password_never_returned(module, run_module, gateway):
    gateway.require_auth = "pusher:s3cret-word"
    result, failed = run_module(module, _args(gateway.url, plan=_plan(), pushgateway_username="pusher",
                                              pushgateway_password="s3cret-word"))
    assert not failed and result["pushed"]
    # The whole result, with the module's invocation where ansible-core reports one (2.19, not 2.21).
    assert "s3cret-word" not in json.dumps(result)
    refused, failed = run_module(module, _args(gateway.url, plan=_plan()))
    assert failed and "answered 401" in refused["msg"]


def test_a_cluster_name_with_a_slash_goes_into_the_path_as_base64(module, run_module, gateway):
    result, failed = run_module(module, _args(gateway.url, plan=_plan(), cluster="team/prod"))
    assert not failed
    assert gateway.pushes()[0].path == "/metrics/job/okera_system_token/cluster@base64/dGVhbS9wcm9k"
    assert gateway.values(job="okera_system_token", cluster="team/prod")


def test_a_refused_push_fails_in_one_line(module, run_module, gateway):
    gateway.fail_with = 500
    result, failed = run_module(module, _args(gateway.url, plan=_plan()))
    assert failed and result["msg"] == (
        "the Pushgateway at %s answered 500 Internal Server Error: pushgateway is unhappy" % gateway.url)


def test_an_unreachable_pushgateway_fails_in_one_line(module, run_module):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % probe.getsockname()[1]
    result, failed = run_module(module, _args(url, plan=_plan(), timeout=5))
    assert failed and result["msg"].startswith("cannot push to the Pushgateway at %s: " % url)
    assert "refused" in result["msg"].lower() and "\n" not in result["msg"]
