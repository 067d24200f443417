#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read S3 objects that hold a token or a key."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_object_data_info
short_description: Read S3 objects that hold a token or a key (Okera's s3:// paths)
version_added: 0.2.0
description:
  - Reads each S3 object of O(uris) and returns whether it exists, the SHA-256 hash of its text,
    its version id, and whether its bucket keeps versions.
  - The text is returned only with O(return_content=true). It is then in the task result, so
    the task must have C(no_log=true) to keep it out of the output and logs.
  - Okera's EMR and non-Kubernetes deployments keep the system token (C(SYSTEM_TOKEN)) and the
    public keys (C(JWT_PUBLIC_KEY)) as C(s3://) paths.
extends_documentation_fragment:
  - okera.auth.aws_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads in check mode too; it changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: Running it again changes nothing; it only reads.
    support: full
options:
  uris:
    description: The objects to read, each as C(s3://BUCKET/KEY).
    type: list
    elements: str
    required: true
  return_content:
    description: Return the objects' text in RV(data). Protect the task with C(no_log=true).
    type: bool
    default: false
  fail_on_missing:
    description: Fail when an object does not exist (a missing bucket always fails).
    type: bool
    default: true
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Read the system token of an EMR cluster
  okera.auth.s3_object_data_info:
    uris: [s3://okera-config/prod/system.token]
    region: eu-west-1
    return_content: true
    fail_on_missing: false
  no_log: true
  register: current

- name: Only learn whether the token changed (hashes and versions, no text)
  okera.auth.s3_object_data_info:
    uris: [s3://okera-config/prod/system.token]
  register: token_hash
"""

RETURN = r"""
objects:
  description: For each URI, C(exists), C(sha256) (C(sha256:<hex>) of its text) and C(version_id).
  returned: always
  type: dict
hashes:
  description: SHA-256 of each existing object's text, as C(sha256:<hex>).
  returned: always
  type: dict
missing:
  description: The URIs that do not exist.
  returned: always
  type: list
  elements: str
versioning:
  description: For each bucket, whether it keeps versions (versioning Enabled).
  returned: always
  type: dict
data:
  description: The text of each existing object.
  returned: when O(return_content=true)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.okera.auth.plugins.module_utils._aws.s3 import (
    AWS_ARGUMENT_SPEC, BOTO3_IMPORT_ERROR, HAS_BOTO3, S3Error, S3Store, parse_s3_uri,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            AWS_ARGUMENT_SPEC,
            uris={"type": "list", "elements": "str", "required": True},
            return_content={"type": "bool", "default": False},
            fail_on_missing={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)
    params = module.params
    try:
        locations = [parse_s3_uri(uri) for uri in params["uris"]]
        store = S3Store.from_params(params)
        found = [store.read(location) for location in locations]
        versioning = {bucket: store.versioning(bucket) for bucket in sorted({location.bucket for location in locations})}
    except S3Error as error:
        module.fail_json(msg=str(error))
    missing = [item.location.uri for item in found if not item.exists]
    if missing and params["fail_on_missing"]:
        module.fail_json(msg="%s does not exist: check the URI and the bucket" % ", ".join(missing), missing=missing)
    result = {"changed": False, "missing": missing, "versioning": versioning,
              "objects": {item.location.uri: item.summary() for item in found},
              "hashes": {item.location.uri: item.sha256 for item in found if item.exists}}
    if params["return_content"]:
        result["data"] = {item.location.uri: item.content for item in found if item.exists}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
