"""The sandbox's fault rules: which request a rule matches, when it acts, what it answers."""
from __future__ import annotations

import json
import os

import pytest

from okera_auth.sandbox.errors import SandboxError
from okera_auth.sandbox.faults import FaultInjector, FaultRule, parse_rule, parse_rules, read_rules, status_error, write_rules

SECRET_PATH = "/api/v1/namespaces/default/secrets/secrets"


def _injector(tmp_path, *rules, log=None) -> FaultInjector:
    path = str(tmp_path / "faults.json")
    write_rules(path, [parse_rule(rule) for rule in rules])
    return FaultInjector(path, log)


def _outcome(injector: FaultInjector, method: str = "PATCH", path: str = SECRET_PATH) -> str:
    fault = injector.fault_for(method, path)
    return "pass" if fault is None else fault.summary()


def test_a_rule_matches_method_and_path_prefix_or_regex():
    by_prefix = parse_rule({"method": "patch", "path": "/api/v1/namespaces/default/secrets", "drop": True})
    assert by_prefix.matches("PATCH", SECRET_PATH)
    assert not by_prefix.matches("GET", SECRET_PATH)
    assert not by_prefix.matches("PATCH", "/api/v1/namespaces/other/secrets/secrets")
    by_regex = parse_rule({"path_regex": "/(deployments|statefulsets)/", "status": 503})
    assert by_regex.method == "*"
    assert by_regex.matches("GET", "/apis/apps/v1/namespaces/default/deployments/cdas-rest-server")
    assert by_regex.matches("PATCH", "/apis/apps/v1/namespaces/default/statefulsets/cerebro-worker")
    assert not by_regex.matches("GET", "/apis/apps/v1/namespaces/default/deployments")
    anything = parse_rule({"delay": 0.5})
    assert anything.matches("DELETE", "/version")


def test_after_lets_requests_through_then_times_bounds_the_fault(tmp_path):
    injector = _injector(tmp_path, {"method": "PATCH", "path": SECRET_PATH, "status": 409, "after": 2, "times": 3})
    outcomes = [_outcome(injector) for _count in range(7)]
    assert outcomes == ["pass", "pass", "409 Conflict", "409 Conflict", "409 Conflict", "pass", "pass"]
    assert _outcome(injector, "GET") == "pass"


def test_without_times_a_rule_acts_forever(tmp_path):
    injector = _injector(tmp_path, {"path": "/api", "status": 500})
    assert {_outcome(injector, "GET", "/api/v1/pods") for _count in range(20)} == {"500 InternalError"}


def test_every_rule_counts_its_matches_and_the_first_in_its_window_acts(tmp_path):
    injector = _injector(tmp_path,
                         {"method": "PATCH", "path": SECRET_PATH, "status": 409, "times": 1},
                         {"path": SECRET_PATH, "status": 503, "after": 1, "times": 1},
                         {"path": "/api/v1/namespaces", "drop": True, "after": 2})
    assert [_outcome(injector) for _count in range(4)] == [
        "409 Conflict", "503 ServiceUnavailable", "connection dropped", "connection dropped"]


def test_kill_drops_every_later_request_until_the_rules_change(tmp_path):
    injector = _injector(tmp_path, {"method": "PATCH", "path": SECRET_PATH, "kill": True, "processed": True, "after": 1})
    assert _outcome(injector, "GET") == "pass"
    assert _outcome(injector) == "pass"
    assert _outcome(injector) == "connection dropped after carrying it out"
    assert _outcome(injector, "GET", "/version") == "connection dropped"
    assert _outcome(injector, "GET", "/apis/apps/v1/namespaces/default/deployments") == "connection dropped"
    write_rules(injector.path, [])
    assert _outcome(injector, "GET", "/version") == "pass"


def test_the_file_is_read_again_when_it_changes_and_counts_start_again(tmp_path):
    lines = []
    injector = _injector(tmp_path, {"path": SECRET_PATH, "status": 409, "times": 1}, log=lines.append)
    assert [_outcome(injector) for _count in range(2)] == ["409 Conflict", "pass"]
    write_rules(injector.path, [parse_rule({"path": SECRET_PATH, "status": 409, "times": 1})])
    assert [_outcome(injector) for _count in range(2)] == ["409 Conflict", "pass"]
    os.unlink(injector.path)
    assert _outcome(injector) == "pass"
    assert sum(line.startswith("faults: 1 rule(s)") for line in lines) == 2
    assert sum(line.startswith("fault: PATCH %s -> 409 Conflict" % SECRET_PATH) for line in lines) == 2


def test_a_broken_file_injects_nothing_and_says_why_in_one_line(tmp_path):
    lines = []
    path = tmp_path / "faults.json"
    path.write_text('{"rules": [{"path": "/api", "status": 99}]}')
    injector = FaultInjector(str(path), lines.append)
    assert _outcome(injector) == "pass"
    assert len(lines) == 1 and "rule 1: fault rule status must be 400 or more" in lines[0] and "\n" not in lines[0]
    path.write_text("{not json")
    assert _outcome(injector) == "pass" and "is not JSON" in lines[-1]


@pytest.mark.parametrize("rule, message", [
    ({"path": "/api"}, "needs status, drop, kill or delay"),
    ({"path": "/api", "status": 409, "drop": True}, "does one of status, drop and kill"),
    ({"path": "api", "drop": True}, "path prefix starting with /"),
    ({"path": "/api", "path_regex": "x", "drop": True}, "not both"),
    ({"path_regex": "(", "drop": True}, "is not a regular expression"),
    ({"method": "BREW", "drop": True}, "method must be one of"),
    ({"status": 200}, "must be 400 or more"),
    ({"status": 600}, "4xx or 5xx"),
    ({"status": "409"}, "must be a whole number"),
    ({"delay": -1}, "must be 0 or more"),
    ({"drop": "yes"}, "must be true or false"),
    ({"status": 503, "processed": True}, "processed goes with drop or kill"),
    ({"drop": True, "retry_after": 3}, "retry_after goes with status"),
    ({"drop": True, "times": 1.5}, "must be a whole number"),
    ({"drop": True, "when": "now"}, "unknown field(s) of a fault rule: when"),
    ("drop", "must be an object"),
])
def test_invalid_rules_are_refused_in_one_line(rule, message):
    with pytest.raises(SandboxError, match=None) as raised:
        parse_rule(rule)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_rules_round_trip_through_the_file_as_written(tmp_path):
    rules = [parse_rule({"method": "GET", "path_regex": "^/apis/apps/", "delay": 2.5, "status": 504, "after": 1}),
             parse_rule({"path": SECRET_PATH, "kill": True, "processed": True})]
    path = str(tmp_path / "faults.json")
    write_rules(path, rules)
    assert read_rules(path) == rules
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert parse_rules(json.loads((tmp_path / "faults.json").read_text())["rules"]) == rules
    assert read_rules(str(tmp_path / "absent.json")) == []


@pytest.mark.parametrize("code, reason, words", [
    (409, "Conflict", 'Operation cannot be fulfilled on secrets "secrets": the object has been modified'),
    (429, "TooManyRequests", "Too many requests"),
    (500, "InternalError", "Internal error occurred"),
    (503, "ServiceUnavailable", "unable to handle the request"),
    (504, "Timeout", "may still be processing the request"),
    (418, "ImATeapot", "i'm a teapot"),
])
def test_status_answers_are_kubernetes_status_objects(code, reason, words):
    status = status_error(FaultRule(status=code), SECRET_PATH).status()
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["code"] == code and status["reason"] == reason and words in status["message"]
    if code == 409:
        assert status["details"] == {"name": "secrets", "kind": "secrets"}
    if code == 429:
        assert status["details"] == {"retryAfterSeconds": 1}


def test_a_429_carries_its_retry_after_and_a_message_can_be_given(tmp_path):
    injector = _injector(tmp_path, {"path": "/", "status": 429, "retry_after": 3, "message": "slow down"})
    fault = injector.fault_for("GET", "/api/v1/namespaces/default/secrets/secrets")
    assert fault.retry_after == 3
    assert fault.error.status()["details"] == {"retryAfterSeconds": 3} and fault.error.message == "slow down"
