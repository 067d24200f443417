# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The RBAC rules a rotation needs: exactly the requests the role's modules send, nothing more.

One home for "which verbs does the rotation use", next to the code that sends the requests:

* ``secrets.read_secret`` GETs a Secret by name; ``secrets.set_secret_data`` GETs it and PATCHes it
  (never creates it: the role passes ``create: false``);
* ``rollout.find_workloads`` LISTs each kind (a list cannot be limited by name), ``restart_workloads``
  PATCHes and ``wait_for_rollouts`` GETs each named workload;
* ``rollout.find_pods`` / ``wait_for_replacements`` LIST pods, ``delete_pods`` DELETEs them;
* ``services.read_service`` GETs the Service in front of Okera's REST API, when the rotation finds the
  API from it.

The integration tests record what a rotation sends and compare it with these rules both ways.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ..errors import shown
from .auth import ClusterError
from .names import WORKLOAD_KINDS, WORKLOAD_PLURALS, checked_name, checked_names

RESTART_MODES = ("rollout", "delete_pods", "none")


def _rule(group: str, resources: Sequence[str], verbs: Sequence[str], names: Sequence[str] = ()) -> Dict[str, Any]:
    rule: Dict[str, Any] = {"apiGroups": [group], "resources": list(resources)}
    if names:
        rule["resourceNames"] = sorted(set(names))
    rule["verbs"] = list(verbs)
    return rule


def rotation_rules(namespace: str, secret_name: str, config_secret_name: Optional[str] = None,
                   restart_mode: str = "rollout", restart_namespace: Optional[str] = None,
                   restart_kinds: Sequence[str] = WORKLOAD_KINDS, restart_names: Sequence[str] = (),
                   rest_service: Optional[str] = None) -> List[Dict[str, Any]]:
    """``[{"namespace": ..., "rules": [...]}]``: the Role rules of each namespace a rotation touches.

    ``config_secret_name`` is the Secret read for the cluster's public key (None when the keys are
    given); ``restart_names`` limit get/patch (rollout) or delete (delete_pods) to those names;
    ``rest_service`` is the Service read to find Okera's REST API (None when its URL is given or the
    check is off). Raises ClusterError for an unknown mode or kind, KubernetesNameError for a name the API
    server would refuse (before any rule is built from it).
    """
    if not isinstance(restart_mode, str) or restart_mode not in RESTART_MODES:
        raise ClusterError("unknown restart mode %s: use %s" % (shown(restart_mode), ", ".join(RESTART_MODES)))
    checked_name(namespace, "namespace", "label")
    checked_name(secret_name, "secret_name")
    if config_secret_name is not None:
        checked_name(config_secret_name, "config_secret_name")
    if restart_namespace is not None:
        checked_name(restart_namespace, "restart_namespace", "label")
    if rest_service is not None:
        checked_name(rest_service, "rest_service", "service")
    restart_names = checked_names(restart_names, "restart_names")
    if not isinstance(restart_kinds, (list, tuple)):
        raise ClusterError("restart_kinds must be a list of kinds (%s), not %s" % (", ".join(WORKLOAD_KINDS), shown(restart_kinds)))
    unknown = [shown(kind) for kind in restart_kinds if not isinstance(kind, str) or kind not in WORKLOAD_PLURALS]
    if unknown:
        raise ClusterError("unknown workload kind %s: use %s" % (", ".join(unknown), ", ".join(WORKLOAD_KINDS)))
    by_namespace: Dict[str, List[Dict[str, Any]]] = {namespace: [_rule("", ["secrets"], ["get", "patch"], [secret_name])]}
    if config_secret_name and config_secret_name != secret_name:
        by_namespace[namespace].append(_rule("", ["secrets"], ["get"], [config_secret_name]))
    if rest_service:
        by_namespace[namespace].append(_rule("", ["services"], ["get"], [rest_service]))
    restart_rules: List[Dict[str, Any]] = []
    if restart_mode == "rollout" and restart_kinds:
        plurals = [WORKLOAD_PLURALS[kind] for kind in restart_kinds]
        restart_rules = [_rule("apps", plurals, ["list"]), _rule("apps", plurals, ["get", "patch"], restart_names)]
    elif restart_mode == "delete_pods":
        restart_rules = [_rule("", ["pods"], ["list"]), _rule("", ["pods"], ["delete"], restart_names)]
    if restart_rules:
        by_namespace.setdefault(restart_namespace or namespace, []).extend(restart_rules)
    return [{"namespace": name, "rules": rules} for name, rules in by_namespace.items()]
