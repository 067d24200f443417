#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart Deployments, StatefulSets and DaemonSets, or replace pods, and wait until ready."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_rollout_restart
short_description: Restart Kubernetes workloads (or replace pods) and wait until they are ready
version_added: 0.1.0
description:
  - Restarts Deployments, StatefulSets and DaemonSets the way C(kubectl rollout restart) does - by
    setting the C(kubectl.kubernetes.io/restartedAt) annotation of their pod template, so that
    their controllers roll out new pods.
  - Selects them by O(names), by O(label_selector), or all of O(kinds) in the namespace.
  - With O(wait), waits until each rollout is complete, judged like C(kubectl rollout status) - the
    controller observed the new generation, and updated, ready (and available) replicas equal the
    desired count with none unavailable and no old pod left.
  - With O(delete_pods=true) it deletes the selected pods instead (the C(kubectl delete pods --all)
    of the Okera documentation), and with O(wait) waits until as many new pods are ready and the old
    ones are gone. The pods' controllers must recreate them, so without O(names) and O(label_selector)
    a bare pod (one without a controller - ReplicaSet, StatefulSet, DaemonSet, Job, ...) is left
    running, with a warning, and not waited for, nor is a pod that has finished; pods chosen by
    O(names) or O(label_selector) are deleted and waited for whatever owns them.
extends_documentation_fragment:
  - okera.auth.k8s_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Lists what would be restarted or deleted and reports C(changed) accordingly; patches, deletes and waits for nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: Whether a second run with the same options changes nothing.
    support: none
    details: Every run restarts; that is the purpose.
options:
  namespace:
    description: Namespace of the workloads or pods.
    type: str
    default: default
  kinds:
    description: Kinds of workloads to restart.
    type: list
    elements: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: [Deployment, StatefulSet, DaemonSet]
  names:
    description:
      - Names of the workloads (or pods with O(delete_pods)) to restart. A name that matches nothing is an error.
      - All of O(kinds) (or all pods) matching O(label_selector) when empty.
    type: list
    elements: str
    default: []
  label_selector:
    description: Label selector, e.g. C(app=okera,tier!=db); restricts O(names) too when both are given.
    type: str
  delete_pods:
    description: Delete the selected pods instead of restarting workloads; O(kinds) is then ignored.
    type: bool
    default: false
  allow_none:
    description: Succeed with nothing to do when the selection is empty (by default that is an error).
    type: bool
    default: false
  annotations:
    description:
      - Pod-template annotations set in the same patch as the restart, for example the
        C(okera.auth/private-key-sha256) of a new key that the sidecar role records.
      - Ignored with O(delete_pods).
    type: dict
    default: {}
  wait:
    description: Wait until the restarted workloads (or the replacement pods) are ready.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait in all before failing with what is not ready.
    type: int
    default: 300
  wait_sleep:
    description: At most this many seconds between two checks while waiting; the first checks come sooner (0.25, 0.5,
      1 s, ... after the first).
    type: int
    default: 2
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Restart every Okera workload and wait until it is ready again
  okera.auth.k8s_rollout_restart:
    kubeconfig: ~/.kube/okera-prod.yaml
    namespace: okera
    label_selector: app.kubernetes.io/part-of=okera
    wait_timeout: 600

- name: Restart two Deployments by name, without waiting
  okera.auth.k8s_rollout_restart:
    context: staging
    kinds: [Deployment]
    names: [cdas-rest-server, odas-planner]
    wait: false

- name: Replace all pods of the namespace, like kubectl delete pods --all
  okera.auth.k8s_rollout_restart:
    namespace: okera
    delete_pods: true
"""

RETURN = r"""
restarted:
  description: The workloads restarted (or that would be, in check mode).
  returned: unless O(delete_pods)
  type: list
  elements: dict
  sample: [{kind: Deployment, namespace: okera, name: cdas-rest-server}]
deleted_pods:
  description: Names of the pods deleted (or that would be, in check mode).
  returned: when O(delete_pods)
  type: list
  elements: str
skipped_pods:
  description: Pods left alone, with why (no controller recreates them, or they have finished).
  returned: when O(delete_pods)
  type: dict
  sample: {debug-shell: no controller recreates it (it would be gone for good)}
status:
  description: What was observed when each workload (or the pod set) became ready, e.g. C(2/2 updated, 2/2 ready, 2/2 available).
  returned: when O(wait) and not in check mode
  type: dict
elapsed:
  description: Seconds spent waiting.
  returned: when O(wait) and not in check mode
  type: float
"""

import time

from ansible_collections.okera.auth.plugins.module_utils._k8s.module import api_client_for, cluster_module
from ansible_collections.okera.auth.plugins.module_utils._k8s.auth import ClusterError, describe_target
from ansible_collections.okera.auth.plugins.module_utils._k8s.rollout import (
    WORKLOAD_KINDS,
    delete_pods,
    find_pods,
    find_workloads,
    pods_to_replace,
    restart_workloads,
    wait_for_replacements,
    wait_for_rollouts,
)


def _run(module, api_client, result: dict) -> None:
    """Restart or replace, filling `result` as it goes so that a failed wait still reports what changed."""
    params = module.params
    namespace, names, selector = params["namespace"], params["names"], params["label_selector"]
    if params["delete_pods"]:
        found = find_pods(api_client, namespace, names, selector)
        pods, skipped = pods_to_replace(found, selected=bool(names or selector))
        result["skipped_pods"] = skipped
        for name, why in sorted(skipped.items()):
            module.warn("pod %s/%s left alone: %s" % (namespace, name, why))
        if not pods and not params["allow_none"]:
            raise ClusterError("no pod in namespace %s%s to delete%s; set allow_none: true if that is expected"
                               % (namespace, " matching %s" % selector if selector else "",
                                  " (%d left alone)" % len(skipped) if skipped else ""))
        deleted = delete_pods(api_client, pods, module.check_mode)
        result.update(changed=bool(deleted), deleted_pods=deleted)
        if params["wait"] and deleted and not module.check_mode:
            started = time.monotonic()
            summary = wait_for_replacements(api_client, namespace, selector, [pod["metadata"]["uid"] for pod in pods],
                                            len(pods), params["wait_timeout"], params["wait_sleep"],
                                            known_uids=[pod["metadata"]["uid"] for pod in found])
            result.update(status={"pods": summary}, elapsed=round(time.monotonic() - started, 1))
        return
    workloads = find_workloads(api_client, namespace, params["kinds"], names, selector)
    if not workloads and not params["allow_none"]:
        raise ClusterError("no %s in namespace %s%s to restart; set allow_none: true if that is expected"
                           % ("/".join(params["kinds"]), namespace, " matching %s" % selector if selector else ""))
    restarted = restart_workloads(api_client, workloads, module.check_mode,
                                  annotations={name: str(value) for name, value in params["annotations"].items()})
    result.update(changed=bool(restarted), restarted=[workload.as_dict() for workload in restarted])
    if params["wait"] and restarted and not module.check_mode:
        started = time.monotonic()
        result["status"] = wait_for_rollouts(api_client, restarted, params["wait_timeout"], params["wait_sleep"])
        result["elapsed"] = round(time.monotonic() - started, 1)


def main() -> None:
    module = cluster_module(
        argument_spec={
            "namespace": {"type": "str", "default": "default"},
            "kinds": {"type": "list", "elements": "str", "choices": list(WORKLOAD_KINDS), "default": list(WORKLOAD_KINDS)},
            "names": {"type": "list", "elements": "str", "default": []},
            "label_selector": {"type": "str"},
            "delete_pods": {"type": "bool", "default": False},
            "allow_none": {"type": "bool", "default": False},
            "annotations": {"type": "dict", "default": {}},
            "wait": {"type": "bool", "default": True},
            "wait_timeout": {"type": "int", "default": 300},
            "wait_sleep": {"type": "int", "default": 2},
        },
        supports_check_mode=True,
    )
    if module.params["wait_timeout"] < 0 or module.params["wait_sleep"] < 1:
        module.fail_json(msg="wait_timeout must be 0 or more and wait_sleep 1 or more (seconds)")
    api_client = api_client_for(module)
    result = {"changed": False}
    try:
        _run(module, api_client, result)
    except ClusterError as error:
        module.fail_json(msg=str(error), cluster=describe_target(module.params), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
