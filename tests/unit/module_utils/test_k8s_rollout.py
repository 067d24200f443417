"""Rollout readiness as kubectl rollout status judges it, pod replacement, and the restart patch."""
from __future__ import annotations

import datetime

import pytest

from fake_clock import FakeClock
from okera_auth.module_utils._k8s.client import ClusterError
from okera_auth.module_utils._k8s.rollout import RESTARTED_AT, _poll, pod_is_ready, replacement_state, restart_patch, rollout_state


def _deployment(generation=2, observed=2, replicas=2, **status):
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": dict({"observedGeneration": observed}, **status)}


def test_restart_patch_is_kubectls_annotation_in_utc():
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert restart_patch(when) == {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-01-02T01:04:05Z"}}}}}


def test_restart_patch_carries_further_annotations_but_keeps_kubectls():
    when = datetime.datetime(2026, 1, 2, 1, 4, 5, tzinfo=datetime.timezone.utc)
    patch = restart_patch(when, {"okera.auth/private-key-sha256": "ab12", RESTARTED_AT: "overridden?"})
    annotations = patch["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"okera.auth/private-key-sha256": "ab12", RESTARTED_AT: "2026-01-02T01:04:05Z"}


def test_deployment_done_when_all_replicas_updated_ready_and_available():
    done, summary = rollout_state("Deployment", _deployment(replicas=2, updatedReplicas=2, readyReplicas=2,
                                                            availableReplicas=2))
    assert done and summary == "2/2 updated, 2/2 ready, 2/2 available"


@pytest.mark.parametrize("case, obj", [
    ("generation not observed", _deployment(observed=1, updatedReplicas=2, readyReplicas=2, availableReplicas=2)),
    ("old replica not yet updated", _deployment(updatedReplicas=1, readyReplicas=2, availableReplicas=2)),
    ("not ready", _deployment(updatedReplicas=2, readyReplicas=1, availableReplicas=1)),
    ("unavailable", _deployment(updatedReplicas=2, readyReplicas=2, availableReplicas=2, unavailableReplicas=1)),
    ("old pod terminating", _deployment(updatedReplicas=2, readyReplicas=2, availableReplicas=2, replicas=3)),
])
def test_deployment_not_done(case, obj):
    assert not rollout_state("Deployment", obj)[0], case


def test_missing_spec_replicas_means_one():
    assert rollout_state("Deployment", {"metadata": {"generation": 1}, "spec": {},
                                        "status": {"observedGeneration": 1, "updatedReplicas": 1,
                                                   "readyReplicas": 1, "availableReplicas": 1}})[0]


def test_statefulset_waits_for_the_update_revision():
    base = {"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "updatedReplicas": 2, "readyReplicas": 2, "replicas": 2}}
    rolling = dict(base, status=dict(base["status"], currentRevision="a", updateRevision="b"))
    finished = dict(base, status=dict(base["status"], currentRevision="b", updateRevision="b"))
    assert not rollout_state("StatefulSet", rolling)[0]
    assert rollout_state("StatefulSet", finished)[0]


def test_daemonset_counts_scheduled_nodes():
    obj = {"metadata": {"generation": 1}, "spec": {},
           "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                      "numberReady": 3, "numberAvailable": 2, "numberUnavailable": 1}}
    done, summary = rollout_state("DaemonSet", obj)
    assert not done and "2/3 available" in summary
    obj["status"].update(numberAvailable=3, numberUnavailable=0)
    assert rollout_state("DaemonSet", obj)[0]


def _pod(uid, ready=True, phase="Running", deleting=False):
    metadata = {"uid": uid, "name": "p-" + uid}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def test_pod_readiness():
    assert pod_is_ready(_pod("a"))
    assert not pod_is_ready(_pod("a", ready=False))
    assert not pod_is_ready(_pod("a", phase="Pending"))
    assert not pod_is_ready(_pod("a", deleting=True))


def test_replacements_need_old_pods_gone_and_as_many_new_ready():
    assert not replacement_state([_pod("old1"), _pod("new1")], ["old1", "old2"], 2)[0]
    assert not replacement_state([_pod("new1"), _pod("new2", ready=False)], ["old1", "old2"], 2)[0]
    done, summary = replacement_state([_pod("new1"), _pod("new2")], ["old1", "old2"], 2)
    assert done and summary == "2/2 replacement pod(s) ready"


def test_poll_gives_up_at_the_deadline_with_the_last_summary():
    clock = FakeClock()
    with pytest.raises(ClusterError, match=r"Deployment ns/x not ready after 5 s: 0/1 ready; raise wait_timeout"):
        _poll(lambda: (False, "0/1 ready"), "Deployment ns/x", 5, 2, clock, clock.sleep)
    assert clock.slept == [0.25, 0.25, 0.5, 1, 2, 1]


def test_poll_sees_a_pod_ready_after_0_3_s_well_before_the_longest_pause():
    clock = FakeClock()
    assert _poll(lambda: (clock() >= 0.3, "%g s" % clock()), "x", 60, 2, clock, clock.sleep) == "0.5 s"
    assert clock.slept == [0.25, 0.25]


def test_poll_returns_as_soon_as_done():
    answers = iter([(False, "waiting"), (True, "1/1 ready")])
    assert _poll(lambda: next(answers), "x", 60, 1, lambda: 0.0, lambda seconds: None) == "1/1 ready"
