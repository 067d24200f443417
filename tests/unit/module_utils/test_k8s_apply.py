"""When an applied object counts as unchanged, and which manifests are refused before any call."""
from __future__ import annotations

import pytest

from okera_auth.module_utils._k8s.client import ClusterError
from okera_auth.module_utils._k8s.apply import Outcome, apply_all, holds, manifest_hash

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "labels": {"app": "client"}},
       "spec": {"containers": [{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}]}}


class _NoCluster:
    """An API client that must not be used: apply_all refuses bad manifests before calling it."""

    def __getattr__(self, name):
        raise AssertionError("the cluster was called (%s) although a manifest was refused" % name)


def test_hash_ignores_key_order_but_not_values():
    reordered = {"spec": POD["spec"], "metadata": POD["metadata"], "kind": "Pod", "apiVersion": "v1"}
    assert manifest_hash(reordered) == manifest_hash(POD)
    changed = {**POD, "metadata": {"name": "client", "labels": {"app": "other"}}}
    assert manifest_hash(changed) != manifest_hash(POD)


def test_server_defaults_do_not_count_as_a_change():
    live = {**POD, "metadata": {**POD["metadata"], "uid": "u-1", "resourceVersion": "7"},
            "spec": {"containers": [{**POD["spec"]["containers"][0], "terminationMessagePath": "/dev/termination-log"}],
                     "restartPolicy": "Always"},
            "status": {"phase": "Running"}}
    assert holds(live, POD)


def test_appended_list_elements_do_not_count_but_changed_ones_do():
    live_volumes = {"volumes": [{"name": "tokens"}, {"name": "kube-api-access"}]}
    assert holds(live_volumes, {"volumes": [{"name": "tokens"}]})
    assert not holds({"volumes": [{"name": "tokens"}]}, {"volumes": [{"name": "tokens"}, {"name": "key"}]})
    assert not holds({"args": ["--ttl", "1h"]}, {"args": ["--ttl", "2h"]})


def test_empty_maps_and_lists_are_held_by_absent_fields():
    assert holds({"metadata": {"name": "x"}}, {"metadata": {"name": "x", "annotations": {}}})
    assert holds({"spec": {}}, {"spec": {"initContainers": []}})
    assert not holds({"metadata": {"annotations": {"a": "b"}}}, {"metadata": {"annotations": {}}})


def test_values_compare_by_type():
    assert not holds({"port": "5001"}, {"port": 5001})
    assert not holds({"readOnly": None}, {"readOnly": False})


@pytest.mark.parametrize("manifest, message", [
    ("text", "definition 1 is not a mapping"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {}}, "definition 1 lacks apiVersion, kind or metadata.name"),
    ({"kind": "Pod", "metadata": {"name": "x"}}, "definition 1 lacks apiVersion, kind or metadata.name"),
    ({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}},
     "definition 1 is batch/v1 Job, which k8s_apply does not handle; supported: v1 Secret"),
])
def test_bad_manifest_is_refused_before_any_call(manifest, message):
    with pytest.raises(ClusterError) as caught:
        list(apply_all(_NoCluster(), [POD, manifest]))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_outcome_reads_as_a_line():
    outcome = Outcome("Deployment", "okera", "reporting", "replaced")
    assert str(outcome) == "Deployment okera/reporting: replaced"
    assert outcome.as_dict() == {"kind": "Deployment", "namespace": "okera", "name": "reporting", "action": "replaced"}
