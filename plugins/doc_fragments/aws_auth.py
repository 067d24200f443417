# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS connection options shared by the S3 and Secrets Manager modules (the names amazon.aws uses)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoint_url:
    description:
      - URL of the service's API to use instead of AWS's (an S3-compatible store, or a local test server).
      - When not given, boto3 reads E(AWS_ENDPOINT_URL_S3) or E(AWS_ENDPOINT_URL_SECRETS_MANAGER), or
        E(AWS_ENDPOINT_URL), else uses AWS.
    type: str
    aliases: [aws_endpoint_url]
  region:
    description:
      - The AWS region; when not given, boto3 reads E(AWS_REGION), E(AWS_DEFAULT_REGION) or the profile.
    type: str
    aliases: [aws_region]
  access_key:
    description:
      - AWS access key id; when not given, boto3's own chain is used (E(AWS_ACCESS_KEY_ID), the
        profile, an instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description: AWS secret access key (with O(access_key)); never shown.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description: AWS session token of temporary credentials; never shown.
    type: str
    aliases: [aws_session_token]
  profile:
    description: A named profile of the AWS configuration files.
    type: str
    aliases: [aws_profile]
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
requirements:
  - boto3 >= 1.34
"""
