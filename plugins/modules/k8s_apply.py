#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create or replace Kubernetes objects from a list of manifests."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_apply
short_description: Create or replace Kubernetes objects from manifests
version_added: 0.1.0
description:
  - Creates each object of O(definitions) that does not exist, replaces each that differs, and
    leaves the others alone, in the order given (put a Secret before the pods that mount it).
  - A Pod cannot be changed in place, so a Pod that differs is deleted, and created again once it is gone.
  - An object is unchanged when the live one carries the SHA-256 of its manifest in the annotation
    C(okera.auth/applied-sha256) (set by this module) and still holds every field the manifest sets.
    Fields added by the server or by others (for instance the C(restartedAt) annotation of a rollout
    restart) do not count as a change.
  - Handles C(v1) Secret, ConfigMap, Service, ServiceAccount, Pod, C(apps/v1) Deployment,
    StatefulSet, DaemonSet, C(batch/v1) CronJob and C(rbac.authorization.k8s.io/v1) Role and
    RoleBinding; other kinds are refused before anything is applied.
  - "Results and diffs name the objects and what was done, never their content. A Secret's data is
    in O(definitions), so give the task C(no_log: true) when it applies Secrets."
extends_documentation_fragment:
  - okera.auth.k8s_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the live objects and reports what would be created, replaced or recreated; writes nothing.
  diff_mode:
    support: partial
    details: Shows, for each object, whether it is absent or present before and applied after; never its content.
  idempotent:
    description: Running it again with the same definitions changes nothing.
    support: full
  platform:
    platforms: posix
options:
  definitions:
    description:
      - The objects, as a list of Kubernetes manifests (mappings with C(apiVersion), C(kind), C(metadata.name)).
      - The output of P(ansible.builtin.from_yaml_all#filter) on a multi-document file fits.
    type: list
    elements: raw
    required: true
  namespace:
    description: Namespace of the objects whose manifest names none.
    type: str
    default: default
  wait_timeout:
    description: Seconds to wait for a deleted Pod to be gone before it is created again.
    type: int
    default: 120
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Apply the manifests rendered by the authserver_sidecar role
  okera.auth.k8s_apply:
    kubeconfig: ~/.kube/config
    definitions: "{{ lookup('ansible.builtin.file', 'rendered/token-client.yml') | ansible.builtin.from_yaml_all | list }}"
  no_log: true  # the Secret's data is in the arguments

- name: Create a ConfigMap in namespace okera
  okera.auth.k8s_apply:
    namespace: okera
    definitions:
      - apiVersion: v1
        kind: ConfigMap
        metadata: {name: okera-clients}
        data: {AUTHSERVER_PORT: "5001"}
"""

RETURN = r"""
objects:
  description: Each object and what was done to it (or would be, in check mode), in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    kind: {description: Kind of the object., type: str}
    namespace: {description: Its namespace., type: str}
    name: {description: Its name., type: str}
    action:
      description: C(created), C(replaced), C(recreated) (a Pod deleted and created again) or C(unchanged).
      type: str
  sample: [{kind: Secret, namespace: default, name: token-client-authserver-key, action: created}]
"""

from ansible_collections.okera.auth.plugins.module_utils._k8s.module import api_client_for, cluster_module
from ansible_collections.okera.auth.plugins.module_utils._k8s.auth import ClusterError, describe_target
from ansible_collections.okera.auth.plugins.module_utils._k8s.apply import apply_all


def main() -> None:
    module = cluster_module(
        argument_spec={
            "definitions": {"type": "list", "elements": "raw", "required": True},
            "namespace": {"type": "str", "default": "default"},
            "wait_timeout": {"type": "int", "default": 120},
        },
        supports_check_mode=True,
    )
    if module.params["wait_timeout"] < 0:
        module.fail_json(msg="wait_timeout must be 0 or more (seconds)")
    api_client = api_client_for(module)
    outcomes = []
    try:
        for outcome in apply_all(api_client, module.params["definitions"], module.params["namespace"],
                                 module.check_mode, module.params["wait_timeout"]):
            outcomes.append(outcome)
    except ClusterError as error:
        module.fail_json(msg=str(error), cluster=describe_target(module.params),
                         changed=any(outcome.action != "unchanged" for outcome in outcomes),
                         objects=[outcome.as_dict() for outcome in outcomes])
    changed = [outcome for outcome in outcomes if outcome.action != "unchanged"]
    result = {"changed": bool(changed), "objects": [outcome.as_dict() for outcome in outcomes]}
    if module._diff:
        result["diff"] = {
            "before": "".join("%s %s/%s: %s\n" % (o.kind, o.namespace, o.name, "absent" if o.action == "created" else "present")
                              for o in changed),
            "after": "".join("%s\n" % outcome for outcome in changed),
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
