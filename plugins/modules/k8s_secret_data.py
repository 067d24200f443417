#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set keys of a Kubernetes Secret's data from plain values."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_secret_data
short_description: Set keys of a Kubernetes Secret's data from plain values
version_added: 0.1.0
description:
  - Sets one or more keys of a Secret's C(data) to the given plain values (the module does the
    base64 encoding) and leaves the other keys alone. Only keys whose value differs are patched.
  - The patch carries the C(resourceVersion) that was read, so a concurrent change makes the API
    server answer 409 Conflict; the module then reads again and retries, up to O(conflict_retries) times.
  - Results and diffs show key names and SHA-256 hashes, never values.
  - Use M(okera.auth.k8s_secret_data_info) to read values.
extends_documentation_fragment:
  - okera.auth.k8s_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the Secret and reports which keys would change; patches nothing.
  diff_mode:
    support: full
    details: Before and after are the hashes of the values of the keys in O(data).
  platform:
    platforms: posix
  idempotent:
    description: Running it again with the same data changes nothing.
    support: full
options:
  name:
    description: Name of the Secret.
    type: str
    required: true
  namespace:
    description: Namespace of the Secret.
    type: str
    default: default
  data:
    description:
      - Keys to set, with their plain (not base64) values. A null value removes the key.
      - The values are secret and never logged.
      - O(data), O(annotations) or both must be given.
    type: dict
    default: {}
  annotations:
    description:
      - Annotations of the Secret to set in the same patch (a null value removes one); others are left alone.
      - Their values are not secret, and are shown in results and diffs.
    type: dict
    default: {}
  expect_hashes:
    description:
      - Write only if the Secret holds exactly these values, as C(sha256:<hex>) of each key's value (null for
        a key that must be absent), in the version the patch is made on - a compare-and-swap, e.g. to
        remove a marker only while the values written with it are still there.
      - Otherwise the task fails, nothing is written, and RV(unexpected_keys) names the keys that differ.
    type: dict
  create:
    description:
      - Create the Secret (of type O(type)) when it does not exist. Without it a missing Secret is
        an error, so a wrong name or namespace is not silently turned into a new Secret.
    type: bool
    default: false
  type:
    description: Type of a Secret created by O(create).
    type: str
    default: Opaque
  conflict_retries:
    description: How many times to read again and retry when the Secret changed between read and patch (409).
    type: int
    default: 5
  backup:
    description:
      - Before patching, write the previous values of the changed keys to a file in O(backup_dir)
        (mode 0600, directory 0700). The file is a merge patch that puts them back -
        C(kubectl patch secret NAME -n NAMESPACE --type merge --patch-file FILE).
      - The file is written where the module runs - on the controller for the usual
        C(ansible_connection=local) cluster hosts, on the target host otherwise.
    type: bool
    default: false
  backup_dir:
    description:
      - Directory for O(backup) files, created when missing. Files are named
        C(<backup_label>_<namespace>_<name>_<UTC time>.json).
    type: path
    default: ~/.ansible/backups/k8s_secret_data
  backup_label:
    description: First part of the backup file name, e.g. the cluster's inventory name.
    type: str
    default: ''
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Put a new system token into the cluster's Secret, keeping the old one in a backup
  okera.auth.k8s_secret_data:
    kubeconfig: ~/.kube/okera-prod.yaml
    namespace: okera
    name: secrets
    data:
      SYSTEM_TOKEN_0: "{{ new_token }}"
    backup: true
    backup_label: "{{ inventory_hostname }}"
  no_log: true
  register: patched

- name: Create a Secret with two keys when it does not exist
  okera.auth.k8s_secret_data:
    context: staging
    name: okera-extra
    create: true
    data:
      USER: admin
      PASSWORD: "{{ admin_password }}"
"""

RETURN = r"""
unexpected_keys:
  description: Keys of O(expect_hashes) whose values differed, when that failed the task.
  returned: failure
  type: list
  elements: str
changed_keys:
  description: Keys whose value was (or in check mode would be) changed.
  returned: always
  type: list
  elements: str
  sample: [SYSTEM_TOKEN_0]
hashes:
  description: For each key in O(data), the SHA-256 of its value after the task (null when absent).
  returned: always
  type: dict
  sample: {SYSTEM_TOKEN_0: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
previous_hashes:
  description: For each key in O(data), the SHA-256 of its value before the task (null when absent).
  returned: always
  type: dict
created:
  description: Whether the Secret was (or would be) created.
  returned: always
  type: bool
changed_annotations:
  description: Names of the annotations of O(annotations) that were (or would be) set or removed.
  returned: always
  type: list
  elements: str
previous_annotations:
  description: For each annotation of O(annotations), its value before the task (null when absent).
  returned: always
  type: dict
resource_version:
  description: The Secret's resourceVersion after the task (before it, in check mode).
  returned: when the Secret exists
  type: str
conflicts:
  description: How many 409 Conflict answers were retried.
  returned: always
  type: int
backup_file:
  description: Path of the backup file written (also when the patch that followed it failed).
  returned: when O(backup) is set and the Secret existed and changed
  type: str
status:
  description: On failure, the HTTP status the API server answered; null when no answer came.
  returned: on failure
  type: int
write_unknown:
  description:
    - On failure, whether the write was sent and got no answer (connection dropped, timeout) or
      500/504, so that it may have been stored without the module knowing. Read the Secret to find out.
  returned: on failure
  type: bool
"""

import os

from ansible_collections.okera.auth.plugins.module_utils._k8s.module import api_client_for, cluster_module
from ansible_collections.okera.auth.plugins.module_utils.errors import FileWriteError
from ansible_collections.okera.auth.plugins.module_utils._k8s.auth import ClusterError, describe_target
from ansible_collections.okera.auth.plugins.module_utils._k8s.secrets import UnexpectedValues, backup_file_name, set_secret_data


def main() -> None:
    module = cluster_module(
        argument_spec={
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "default": "default"},
            "data": {"type": "dict", "default": {}, "no_log": True},
            "annotations": {"type": "dict", "default": {}},
            "expect_hashes": {"type": "dict", "no_log": False},
            "create": {"type": "bool", "default": False},
            "type": {"type": "str", "default": "Opaque"},
            "conflict_retries": {"type": "int", "default": 5},
            "backup": {"type": "bool", "default": False},
            "backup_dir": {"type": "path", "default": "~/.ansible/backups/k8s_secret_data"},
            "backup_label": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    values = {str(key): None if value is None else str(value).encode("utf-8") for key, value in params["data"].items()}
    annotations = {str(key): None if value is None else str(value) for key, value in params["annotations"].items()}
    if not values and not annotations:
        module.fail_json(msg="data and annotations are empty: give at least one key or annotation to set")
    if params["conflict_retries"] < 0:
        module.fail_json(msg="conflict_retries must be 0 or more")
    backup_path = (backup_file_name(params["backup_dir"], params["namespace"], params["name"], params["backup_label"])
                   if params["backup"] else None)
    api_client = api_client_for(module)
    try:
        result = set_secret_data(api_client, params["namespace"], params["name"], values, create=params["create"],
                                 secret_type=params["type"], check_mode=module.check_mode,
                                 conflict_retries=params["conflict_retries"], backup_path=backup_path,
                                 annotations=annotations, expect_hashes=params["expect_hashes"])
    except UnexpectedValues as error:
        module.fail_json(msg=str(error), unexpected_keys=error.keys, write_unknown=False)
    except ClusterError as error:
        # backup_file: written before the patch that failed.
        failure = {"status": error.status, "write_unknown": error.write_unknown}
        if backup_path and os.path.exists(backup_path):
            failure["backup_file"] = backup_path
        module.fail_json(msg=str(error), cluster=describe_target(params), **failure)
    except FileWriteError as error:
        module.fail_json(msg="%s; check backup_dir" % error)
    except OSError as error:
        module.fail_json(msg="cannot write the backup file %s: %s; check backup_dir" % (backup_path, error.strerror))
    output = {
        "changed": result.changed,
        "changed_keys": result.changed_keys,
        "hashes": result.after if result.changed else result.before,
        "previous_hashes": result.before,
        "created": result.created,
        "resource_version": result.resource_version,
        "conflicts": result.conflicts,
        "changed_annotations": result.changed_annotations,
        "previous_annotations": result.annotations_before,
    }
    if result.backup_file:
        output["backup_file"] = result.backup_file
    if module._diff:
        output["diff"] = {"before": dict(result.before, **{"annotation " + key: value for key, value
                                                           in result.annotations_before.items()}),
                          "after": dict(result.after, **{"annotation " + key: annotations[key] for key in annotations}),
                          "before_header": "Secret %s/%s" % (params["namespace"], params["name"]),
                          "after_header": "Secret %s/%s" % (params["namespace"], params["name"])}
    module.exit_json(**output)


if __name__ == "__main__":
    main()
