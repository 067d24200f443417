"""The rotation's RBAC rules: by name where Kubernetes allows it, one namespace entry per namespace touched,
only the verbs the modules send (the integration test compares them with a recorded rotation)."""
from __future__ import annotations

import pytest

from okera_auth.module_utils._k8s.client import ClusterError
from okera_auth.module_utils._k8s.rbac import rotation_rules


def _verbs(entries):
    return {verb for entry in entries for rule in entry["rules"] for verb in rule["verbs"]}


def test_rollout_of_named_workloads_with_the_key_from_the_configuration():
    assert rotation_rules("okera", "secrets", "okera-config", restart_kinds=["Deployment", "StatefulSet"],
                          restart_names=["cerebro-worker", "cdas-rest-server"], rest_service="cdas-rest-server") == [
        {"namespace": "okera", "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["secrets"], "verbs": ["get", "patch"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["okera-config"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["services"], "resourceNames": ["cdas-rest-server"], "verbs": ["get"]},
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["list"]},
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"],
             "resourceNames": ["cdas-rest-server", "cerebro-worker"], "verbs": ["get", "patch"]}]}]


def test_given_public_keys_and_a_given_rest_url_need_no_more_reads():
    (entry,) = rotation_rules("okera", "secrets", None, restart_mode="none")
    assert entry["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["secrets"],
                               "verbs": ["get", "patch"]}]


def test_a_configuration_kept_in_the_token_secret_is_the_same_rule():
    (entry,) = rotation_rules("okera", "secrets", "secrets", restart_mode="none")
    assert len(entry["rules"]) == 1


def test_deleting_pods_lists_and_deletes_pods_only():
    (entry,) = rotation_rules("okera", "secrets", restart_mode="delete_pods")
    assert entry["rules"][1:] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]


def test_workloads_in_another_namespace_get_their_own_role():
    entries = rotation_rules("okera-secrets", "secrets", restart_namespace="okera-apps", restart_kinds=["Deployment"])
    assert [entry["namespace"] for entry in entries] == ["okera-secrets", "okera-apps"]
    assert entries[1]["rules"][1] == {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}


@pytest.mark.parametrize("mode", ["rollout", "delete_pods", "none"])
def test_no_rule_creates_updates_watches_or_uses_wildcards(mode):
    entries = rotation_rules("okera", "secrets", "okera-config", restart_mode=mode, rest_service="rest")
    assert _verbs(entries) <= {"get", "list", "patch", "delete"}
    assert not any("*" in value for entry in entries for rule in entry["rules"]
                   for field in rule.values() for value in field)


@pytest.mark.parametrize("arguments, message", [
    ({"restart_mode": "scale"}, "unknown restart mode 'scale'"),
    ({"restart_kinds": ["Deployment", "CronJob"]}, "unknown workload kind 'CronJob'"),
])
def test_unknown_modes_and_kinds_are_refused(arguments, message):
    with pytest.raises(ClusterError, match=message):
        rotation_rules("okera", "secrets", **arguments)


def test_the_filter_wraps_the_rules_and_reports_errors_as_filter_errors():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.okera.auth.plugins.filter.rbac import rotation_rbac_rules
    assert rotation_rbac_rules("okera", "secrets", config_secret_name="", restart_mode="none") == rotation_rules(
        "okera", "secrets", None, restart_mode="none")
    with pytest.raises(AnsibleFilterError, match="rotation_rbac_rules: unknown restart mode"):
        rotation_rbac_rules("okera", "secrets", restart_mode="scale")
