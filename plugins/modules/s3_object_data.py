#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write an S3 object that holds a token, keeping the previous value."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_object_data
short_description: Write an S3 object that holds a token, keeping the previous value
version_added: 0.2.0
description:
  - Writes O(content) to the S3 object O(uri) when it holds something else.
  - Keeps the previous value first (O(backup)). Where the bucket has versioning, the previous
    version stays and its id is returned; else the object is copied to C(<key><backup_suffix>)
    before it is overwritten.
  - The content is never returned or shown; the result and the diff carry SHA-256 hashes and
    version ids only.
extends_documentation_fragment:
  - okera.auth.aws_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the object and predicts whether it would change; writes nothing.
  diff_mode:
    support: full
    details: The hash and version of the object before and the hash after; never the content.
  platform:
    platforms: posix
  idempotent:
    description: An object that already holds O(content) is left alone.
    support: full
options:
  uri:
    description: The object, as C(s3://BUCKET/KEY).
    type: str
    required: true
  content:
    description: The text to store (a token). Never shown.
    type: str
    required: true
  backup:
    description: Keep the previous value (as a version, or as a copy in unversioned buckets).
    type: bool
    default: true
  backup_suffix:
    description:
      - Suffix of the backup copy's key in a bucket without versioning.
      - Default C(.backup-<UTC time>), for example C(.backup-20260101T031500Z).
    type: str
  expected_sha256:
    description:
      - The C(sha256:<hex>) the object is expected to hold now (as read earlier); when it holds
        something else (another writer came first), nothing is written and the task fails.
      - C(absent) expects no object.
    type: str
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Store the new system token, keeping the previous one
  okera.auth.s3_object_data:
    uri: s3://okera-config/prod/system.token
    content: "{{ new_token }}"
    region: eu-west-1
  no_log: true
  register: written     # version_id, sha256, backup_version_id or backup_uri
"""

RETURN = r"""
uri:
  description: The object written.
  returned: always
  type: str
sha256:
  description: C(sha256:<hex>) of the content now stored (or that would be, in check mode).
  returned: always
  type: str
previous_sha256:
  description: C(sha256:<hex>) of what the object held before; null when it did not exist.
  returned: always
  type: str
version_id:
  description: The new version's id (buckets with versioning; null otherwise or when unchanged).
  returned: always
  type: str
backup_version_id:
  description: The previous version's id, kept by the bucket's versioning.
  returned: when a previous value was kept as a version
  type: str
backup_uri:
  description: Where the previous value was copied (buckets without versioning).
  returned: when a previous value was copied
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.okera.auth.plugins.module_utils._aws.s3 import (
    AWS_ARGUMENT_SPEC, BOTO3_IMPORT_ERROR, HAS_BOTO3, S3Error, S3Store, content_hash, parse_s3_uri,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            AWS_ARGUMENT_SPEC,
            uri={"type": "str", "required": True},
            content={"type": "str", "required": True, "no_log": True},
            backup={"type": "bool", "default": True},
            backup_suffix={"type": "str"},
            expected_sha256={"type": "str", "no_log": False},
        ),
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)
    params = module.params
    wanted = content_hash(params["content"])
    try:
        location = parse_s3_uri(params["uri"])
        store = S3Store.from_params(params)
        current = store.read(location)
    except S3Error as error:
        module.fail_json(msg=str(error))
    expected = params["expected_sha256"]
    if expected is not None and (current.sha256 or "absent") != expected:
        module.fail_json(msg="%s changed since it was read (it holds %s, expected %s): another writer came first; "
                         "nothing was written" % (location.uri, (current.sha256 or "nothing")[:19], expected[:19]))
    result = {"uri": location.uri, "sha256": wanted, "previous_sha256": current.sha256, "version_id": None,
              "changed": current.sha256 != wanted}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": {"uri": location.uri, "sha256": current.sha256, "version_id": current.version_id},
                          "after": {"uri": location.uri, "sha256": wanted}}
    if result["changed"] and not module.check_mode:
        try:
            written = store.write(location, params["content"], current, params["backup"], params["backup_suffix"])
        except S3Error as error:
            module.fail_json(msg=str(error))
        result["version_id"] = written.version_id
        if written.backup_version_id:
            result["backup_version_id"] = written.backup_version_id
        if written.backup_uri:
            result["backup_uri"] = written.backup_uri
    module.exit_json(**result)


if __name__ == "__main__":
    main()
