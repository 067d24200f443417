#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what the ready pods of a workload logged, find the last line matching a pattern, wait for a value."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_pod_log_info
short_description: Read the logs of a workload's pods and wait until each names an expected value
version_added: 0.1.0
description:
  - Reads the log of one container of each ready pod of a workload (its pod selector), or of the pods matching
    O(label_selector), as C(kubectl logs --tail) does.
  - With O(search), reports for each pod the newest line matching that regular expression and its first group.
  - With O(expect), waits up to O(wait_timeout) until every ready pod's newest matching line has that value, and
    fails at once when a pod's has another one, naming the pod and quoting the line. A pod that logged no matching
    line by then (an empty log too) fails the task, naming the pod; so does a workload without a ready pod.
  - This is how the role C(okera.auth.signing_key) checks that auth servers running as sidecars, which listen on
    their pod's loopback only, sign with the new key - the key id they log at start and at each reload.
extends_documentation_fragment:
  - okera.auth.k8s_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads and waits in check mode too; it changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: Running it again changes nothing; it only reads.
    support: full
options:
  namespace:
    description: Namespace of the workload or pods.
    type: str
    default: default
  name:
    description: The workload whose pods are read (its C(spec.selector)). One of O(name) and O(label_selector) is required.
    type: str
  kind:
    description: The kind of the workload O(name).
    type: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: Deployment
  label_selector:
    description: Read the pods matching this label selector instead of a workload's, e.g. C(app=token-client).
    type: str
  container:
    description: The container whose log is read; may be left out for pods with one container.
    type: str
  tail_lines:
    description: How many of the newest lines of each log are read.
    type: int
    default: 200
  ready_only:
    description: Read only pods that are ready (Running, condition Ready, not being deleted).
    type: bool
    default: true
  search:
    description: A Python regular expression; the newest line of each log matching it is reported, with its first group.
    type: str
  expect:
    description:
      - The value (the first group of O(search), or the whole match without a group) each pod's newest matching line
        must have. Requires O(search).
    type: str
  wait_timeout:
    description: Seconds to wait for O(expect) before failing.
    type: int
    default: 60
  wait_sleep:
    description: At most this many seconds between two reads while waiting; the first reads come sooner (0.25, 0.5,
      1 s, ... after the first).
    type: int
    default: 2
  return_log:
    description: Return the lines read, in RV(pods[].lines).
    type: bool
    default: false
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Wait until the sidecar auth server of token-client signs with the new key
  okera.auth.k8s_pod_log_info:
    namespace: okera
    name: token-client
    container: authserver
    search: '(?:Signing with .* key|Reloaded key) kid=([A-Za-z0-9_-]+)'
    expect: "{{ new_key_fingerprint }}"
    wait_timeout: 120

- name: The last lines of each ready pod of token-client
  okera.auth.k8s_pod_log_info:
    label_selector: app=token-client
    container: authserver
    tail_lines: 20
    return_log: true
  register: token_client_logs
"""

RETURN = r"""
selector:
  description: The label selector the pods were listed with.
  returned: always
  type: str
  sample: app=token-client
pods:
  description: Each pod read, by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The pod's name.
      type: str
    ready:
      description: Whether it is ready.
      type: bool
    line_count:
      description: How many lines were read.
      type: int
    match:
      description: The newest line matching O(search) (the matched part), or null.
      type: str
    value:
      description: Its first group (the whole match without one), or null.
      type: str
    lines:
      description: The lines read, oldest first (with O(return_log)).
      type: list
      elements: str
elapsed:
  description: Seconds spent waiting for O(expect).
  returned: with O(expect)
  type: float
"""

import re
import time

from ansible_collections.okera.auth.plugins.module_utils._k8s.module import api_client_for, cluster_module
from ansible_collections.okera.auth.plugins.module_utils._k8s.auth import ClusterError, describe_target
from ansible_collections.okera.auth.plugins.module_utils._k8s.logs import pod_logs, wait_for_expected, workload_selector
from ansible_collections.okera.auth.plugins.module_utils._k8s.rollout import WORKLOAD_KINDS, Workload


def main() -> None:
    module = cluster_module(
        argument_spec={
            "namespace": {"type": "str", "default": "default"},
            "name": {"type": "str"},
            "kind": {"type": "str", "choices": list(WORKLOAD_KINDS), "default": "Deployment"},
            "label_selector": {"type": "str"},
            "container": {"type": "str"},
            "tail_lines": {"type": "int", "default": 200},
            "ready_only": {"type": "bool", "default": True},
            "search": {"type": "str"},
            "expect": {"type": "str"},
            "wait_timeout": {"type": "int", "default": 60},
            "wait_sleep": {"type": "int", "default": 2},
            "return_log": {"type": "bool", "default": False},
        },
        required_one_of=[("name", "label_selector")],
        mutually_exclusive=[("name", "label_selector")],
        required_by={"expect": "search"},
        supports_check_mode=True,
    )
    params = module.params
    if params["tail_lines"] < 1 or params["wait_timeout"] < 0 or params["wait_sleep"] < 1:
        module.fail_json(msg="tail_lines and wait_sleep must be 1 or more and wait_timeout 0 or more")
    try:
        pattern = re.compile(params["search"]) if params["search"] else None
    except re.error as error:
        module.fail_json(msg="search is not a valid regular expression: %s" % error)
    api_client = api_client_for(module)
    namespace = params["namespace"]
    result = {"changed": False}
    try:
        if params["name"]:
            workload = Workload(params["kind"], namespace, params["name"])
            what = str(workload)
            selector = workload_selector(api_client, workload)
        else:
            selector = params["label_selector"]
            what = "pods in namespace %s matching %s" % (namespace, selector)
        result["selector"] = selector

        def read():
            return pod_logs(api_client, namespace, selector, params["container"], params["tail_lines"], pattern,
                            params["ready_only"])

        if params["expect"] is None:
            logs = read()
        else:
            started = time.monotonic()
            logs = wait_for_expected(read, params["expect"], what, params["wait_timeout"], params["wait_sleep"])
            result["elapsed"] = round(time.monotonic() - started, 1)
    except ClusterError as error:
        module.fail_json(msg=str(error), cluster=describe_target(params), **result)
    result["pods"] = [entry.as_dict(params["return_log"]) for entry in logs]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
