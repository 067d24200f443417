#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set the staging labels of an AWS Secrets Manager secret to versions holding given values."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: secretsmanager_secret_stages
short_description: Point the staging labels of an AWS Secrets Manager secret at given values
version_added: 0.2.0
description:
  - Makes each staging label of O(stages) (V(AWSCURRENT), V(AWSPENDING), V(AWSPREVIOUS) or a label of
    your own) name a version of the secret O(secret_id) that holds the given value; a null value removes
    the label. This is how Secrets Manager's own rotation moves a secret from one value to the next.
  - A label is moved to a labelled version that already holds the value (so a rollback returns to the
    version that was current before), else a new version is put with that label.
  - V(AWSCURRENT) is set first; Secrets Manager then moves V(AWSPREVIOUS) to the version it left, and the
    other labels of O(stages) are set after that.
  - The secret must exist. Read values with the lookup P(amazon.aws.secretsmanager_secret#lookup)
    (its C(version_stage) option); C(community.aws.secretsmanager_secret) sets no staging labels.
  - Values are never returned or shown; the result and the diff carry version ids and SHA-256 hashes.
extends_documentation_fragment:
  - okera.auth.aws_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the secret's versions and predicts the labels; changes nothing.
  diff_mode:
    support: full
    details: Each label's version id and value hash before and after; never a value.
  platform:
    platforms: posix
  idempotent:
    description: Labels that already name versions holding the values are left alone.
    support: full
options:
  secret_id:
    description: The secret's name or ARN.
    type: str
    required: true
  stages:
    description:
      - Staging label to the text its version must hold, or null to remove the label. Never shown.
      - V(AWSCURRENT) cannot be removed.
    type: dict
    required: true
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Make the pending key current (the old one becomes AWSPREVIOUS) and drop the pending label
  okera.auth.secretsmanager_secret_stages:
    secret_id: okera/jwt-signing
    stages:
      AWSCURRENT: "{{ new_private_key }}"
      AWSPENDING: null
    region: eu-west-1
  no_log: true
"""

RETURN = r"""
stages:
  description: Each label after the change (or as it would be, in check mode) with its version id and the C(sha256:<hex>) of its value.
  returned: always
  type: dict
  sample: {AWSCURRENT: {version_id: 3f1c..., sha256: "sha256:9b2e..."}}
previous_stages:
  description: The same, before the change.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.okera.auth.plugins.module_utils._aws.secretsmanager import (
    AWS_ARGUMENT_SPEC, BOTO3_IMPORT_ERROR, CURRENT, HAS_BOTO3, SecretStages, SecretsManagerError, next_step,
    ordered_labels, simulate, stages_summary,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            AWS_ARGUMENT_SPEC,
            secret_id={"type": "str", "required": True},
            stages={"type": "dict", "required": True, "no_log": True},
        ),
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)
    wanted = module.params["stages"]
    bad = [label for label, value in wanted.items() if value is not None and not isinstance(value, str)]
    if bad or wanted.get(CURRENT, "") is None:
        module.fail_json(msg="stages: give each label a text or null (AWSCURRENT cannot be null); wrong: %s"
                         % ", ".join(sorted(bad) or [CURRENT]))
    try:
        store = SecretStages(module.params["secret_id"], module.params)
        versions = before = store.versions()
        changed = False
        for label in ordered_labels(wanted):
            step = next_step(versions, label, wanted[label])
            if step is None:
                continue
            changed = True
            if module.check_mode:
                versions = simulate(versions, step)
            else:
                store.apply(step)
                versions = store.versions()
    except SecretsManagerError as error:
        module.fail_json(msg=str(error))
    result = {"changed": changed, "stages": stages_summary(versions), "previous_stages": stages_summary(before)}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": result["previous_stages"], "after": result["stages"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
