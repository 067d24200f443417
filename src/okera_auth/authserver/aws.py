# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private key from AWS Secrets Manager (``--private-key-secret-id``), fetched at start and
on SIGHUP so that a node picks up a rotated key without a playbook run.

boto3 is optional (``pip install okera-auth[aws]``) and imported only when the option is used.
Every failure is one line naming the secret and what to check; none carries the key."""

from __future__ import annotations

from typing import Optional

from okera_auth.module_utils._http import without_userinfo

from .options import StartupError

# Secrets Manager holds at most 64 KiB in a secret's string; a key is a few KiB.
REQUEST_TIMEOUT = 10


def fetch_secret_string(secret_id: str, region: Optional[str] = None, endpoint_url: Optional[str] = None) -> bytes:
    """The secret's current string (AWSCURRENT) as bytes."""
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise StartupError("--private-key-secret-id needs boto3: pip install 'okera-auth[aws]' (or boto3) "
                           "into the server's environment") from None
    where = "secret %s" % secret_id
    try:
        client = boto3.session.Session(region_name=region or None).client(
            "secretsmanager", endpoint_url=endpoint_url or None,
            config=botocore.config.Config(connect_timeout=REQUEST_TIMEOUT, read_timeout=REQUEST_TIMEOUT,
                                          retries={"max_attempts": 2}))
        # The label named, not the secret's default version: a rotation moves AWSCURRENT between
        # versions (update_secret_version_stage), and that label is what every reader must follow.
        answer = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except botocore.exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == "ResourceNotFoundException":
            raise StartupError("%s does not exist in AWS Secrets Manager (check --private-key-secret-id "
                               "and --aws-region)" % where) from None
        if code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                    "ExpiredTokenException"):
            raise StartupError("%s could not be read: %s (check the AWS credentials and the secret's "
                               "policy)" % (where, code)) from None
        raise StartupError("%s could not be read: %s" % (where, code or "error")) from None
    except botocore.exceptions.NoRegionError:
        raise StartupError("%s: no AWS region (give --aws-region or set AWS_REGION)" % where) from None
    except botocore.exceptions.NoCredentialsError:
        raise StartupError("%s: no AWS credentials (an instance role, AWS_PROFILE or "
                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)" % where) from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError):
        raise StartupError("%s: AWS Secrets Manager %sis unreachable" % (
            where, "at %s " % without_userinfo(endpoint_url) if endpoint_url else "")) from None
    except (botocore.exceptions.BotoCoreError, ValueError) as error:
        raise StartupError("%s could not be read: %s" % (where, type(error).__name__)) from None
    text = answer.get("SecretString")
    if not text:
        raise StartupError("%s holds no text (SecretString): store the PEM key as the secret's string" % where)
    return text.encode("utf-8")
