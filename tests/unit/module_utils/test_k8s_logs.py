"""Reading what a workload's pods logged: their selector, the newest matching line, waiting for a value."""
from __future__ import annotations

import re

import pytest

from fake_clock import FakeClock
from okera_auth.module_utils._k8s.client import ClusterError
from okera_auth.module_utils._k8s.logs import PodLog, expectation_state, last_match, selector_of, wait_for_expected
from okera_auth.module_utils._k8s.rollout import Workload

KID = re.compile(r"(?:Signing with .* key|Reloaded key) kid=([A-Za-z0-9_-]+)")
WORKLOAD = Workload("Deployment", "okera", "token-client")


def test_selector_joins_match_labels_and_expressions():
    obj = {"spec": {"selector": {"matchLabels": {"app": "token-client", "tier": "web"}, "matchExpressions": [
        {"key": "track", "operator": "In", "values": ["a", "b"]}, {"key": "canary", "operator": "DoesNotExist"},
        {"key": "zone", "operator": "NotIn", "values": ["x"]}, {"key": "owner", "operator": "Exists"}]}}}
    assert selector_of(WORKLOAD, obj) == "app=token-client,tier=web,track in (a,b),!canary,zone notin (x),owner"


def test_workload_without_selector_is_an_error():
    with pytest.raises(ClusterError, match="Deployment okera/token-client has no pod selector"):
        selector_of(WORKLOAD, {"spec": {}})


def test_newest_key_line_wins_whether_start_or_reload():
    lines = ["2026/12/03 06:42:18 Signing with RSA 2048 key kid=old (RS512); token files in /tmp/tokens",
             "2026/12/03 06:42:19 Generated token: /tmp/tokens/a.1.token",
             '{"time":"x","event":"reloaded","message":"Reloaded key kid=new (RS512)","kid":"new"}',
             "2026/12/03 06:50:00 Deleted token: /tmp/tokens/a.1.token"]
    assert last_match(lines, KID).group(1) == "new"
    assert last_match(lines[:2], KID).group(1) == "old"
    assert last_match([], KID) is None


def _log(name, value=None, lines=("a line",)):
    return PodLog(name, True, list(lines), match=None if value is None else "kid=" + value, value=value)


@pytest.mark.parametrize("logs, done, wrong, summary", [
    ([], False, [], "no ready pod"),
    ([_log("a", "new"), _log("b", "new")], True, [], "2 pod(s) match"),
    ([_log("a", "new"), _log("b")], False, [], "no matching line yet from b"),
    ([_log("a", "new"), _log("b", lines=())], False, [], "no matching line yet from b (empty log)"),
    ([_log("a", "old"), _log("b", "new")], False, ["a (old)"], "2 pod(s) match"),
])
def test_expectation_state(logs, done, wrong, summary):
    assert expectation_state(logs, "new") == (done, wrong, summary)


def test_waits_until_every_pod_names_the_value():
    clock, reads = FakeClock(), iter([[_log("a")], [_log("a", "new")]])
    logs = wait_for_expected(lambda: next(reads), "new", str(WORKLOAD), 10, 2, clock, clock.sleep)
    assert [entry.value for entry in logs] == ["new"] and clock.slept == [0.25]


def test_another_value_fails_at_once_quoting_the_line():
    clock = FakeClock()
    with pytest.raises(ClusterError, match=r"Deployment okera/token-client: a \(old\) logged another value than new: kid=old"):
        wait_for_expected(lambda: [_log("a", "old")], "new", str(WORKLOAD), 10, 2, clock, clock.sleep)
    assert clock.now == 0


def test_no_line_by_the_timeout_fails_naming_the_pod():
    clock = FakeClock()
    with pytest.raises(ClusterError, match=r"no matching line yet from a \(empty log\) after 5 s"):
        wait_for_expected(lambda: [_log("a", lines=())], "new", str(WORKLOAD), 5, 2, clock, clock.sleep)
    assert clock.slept == [0.25, 0.25, 0.5, 1, 2, 1] and clock.now == 5
