# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 objects that hold a token or a public key (Okera's ``s3://`` paths).

Read an object, write it with a backup of the previous value (the previous version where the
bucket keeps versions, else a copy under a backup key), and turn the SDK's failures into one-line
messages a user can act on. No message ever carries an object's content or a credential.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from .._http import without_userinfo
from ..errors import OkeraAuthError, shown

try:
    import boto3
    import botocore.exceptions

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR: Optional[str] = None
except ImportError as exc:  # reported by the modules through missing_required_lib
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = str(exc)

# The options of amazon.aws's modules (and their environment variables, which boto3 reads
# itself when an option is not given).
AWS_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "endpoint_url": {"type": "str", "aliases": ["aws_endpoint_url"]},
    "region": {"type": "str", "aliases": ["aws_region"]},
    "access_key": {"type": "str", "aliases": ["aws_access_key_id", "aws_access_key"], "no_log": True},
    "secret_key": {"type": "str", "aliases": ["aws_secret_access_key", "aws_secret_key"], "no_log": True},
    "session_token": {"type": "str", "aliases": ["aws_session_token"], "no_log": True},
    "profile": {"type": "str", "aliases": ["aws_profile"]},
    "validate_certs": {"type": "bool", "default": True},
}
# Seconds for one request; an endpoint that does not answer within it is reported, not waited on.
REQUEST_TIMEOUT = 30
_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S+)")


class S3Error(OkeraAuthError):
    """An S3 object could not be read or written; the message says why and what to check."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return "s3://%s/%s" % (self.bucket, self.key)


@dataclass(frozen=True)
class S3Object:
    """What an object holds now (``content`` None and ``exists`` False when it is missing)."""

    location: S3Location
    exists: bool
    content: Optional[str] = None
    version_id: Optional[str] = None

    @property
    def sha256(self) -> Optional[str]:
        return content_hash(self.content) if self.content is not None else None

    def summary(self) -> dict:
        """The object without its content: safe to show."""
        return {"uri": self.location.uri, "exists": self.exists, "sha256": self.sha256, "version_id": self.version_id}


@dataclass(frozen=True)
class S3Write:
    """The result of a write: the new version (if the bucket keeps versions) and where the old one is."""

    location: S3Location
    version_id: Optional[str]
    sha256: str
    backup_version_id: Optional[str] = None
    backup_uri: Optional[str] = None


def content_hash(content: str) -> str:
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()


def parse_s3_uri(uri: Any) -> S3Location:
    """``s3://bucket/key`` as bucket and key; anything else is an S3Error."""
    text = str(uri).strip() if uri is not None else ""
    match = _URI.fullmatch(text)
    if not match:
        raise S3Error("%s is not an S3 object URI: give s3://BUCKET/KEY" % shown(text))
    return S3Location(match.group(1), match.group(2))


def is_s3_uri(text: Any) -> bool:
    return isinstance(text, str) and text.strip().startswith("s3://")


class S3Store:
    """One S3 client (AWS or any endpoint that speaks its API) and the operations the rotation needs."""

    def __init__(self, endpoint_url: Optional[str] = None, region: Optional[str] = None,
                 access_key: Optional[str] = None, secret_key: Optional[str] = None,
                 session_token: Optional[str] = None, profile: Optional[str] = None,
                 validate_certs: bool = True) -> None:
        if not HAS_BOTO3:
            raise S3Error("boto3 is required for S3 objects: pip install boto3 (%s)" % BOTO3_IMPORT_ERROR)
        self.endpoint_url = endpoint_url
        try:
            session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                            aws_session_token=session_token, profile_name=profile, region_name=region)
            config = botocore.config.Config(connect_timeout=REQUEST_TIMEOUT, read_timeout=REQUEST_TIMEOUT,
                                            retries={"max_attempts": 2})
            self._client = session.client("s3", endpoint_url=endpoint_url, verify=validate_certs, config=config)
        except botocore.exceptions.ProfileNotFound as error:
            raise S3Error("AWS profile %s is not configured: check profile" % error.kwargs.get("profile")) from None
        except (botocore.exceptions.BotoCoreError, ValueError) as error:
            raise S3Error("cannot set up the S3 client: %s" % _one_line(error)) from None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "S3Store":
        return cls(**{name: params.get(name) for name in AWS_ARGUMENT_SPEC if name != "validate_certs"},
                   validate_certs=params.get("validate_certs", True))

    def read(self, location: S3Location) -> S3Object:
        """The object's text (UTF-8), or a missing object when the key does not exist."""
        try:
            answer = self._client.get_object(Bucket=location.bucket, Key=location.key)
            body = answer["Body"].read()
        except botocore.exceptions.ClientError as error:
            if _code(error) in ("NoSuchKey", "404"):
                return S3Object(location, exists=False)
            raise self._error("read", location, error) from None
        except botocore.exceptions.BotoCoreError as error:
            raise self._error("read", location, error) from None
        try:
            content = body.decode("utf-8")
        except UnicodeDecodeError:
            raise S3Error("%s holds binary data, not a token or key" % location.uri) from None
        return S3Object(location, exists=True, content=content, version_id=_version(answer.get("VersionId")))

    def versioning(self, bucket: str) -> bool:
        """Whether the bucket keeps every version of an object (versioning Enabled)."""
        try:
            return self._client.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise self._error("read the versioning of", S3Location(bucket, ""), error) from None

    def write(self, location: S3Location, content: str, previous: Optional[S3Object] = None,
              backup: bool = True, backup_suffix: Optional[str] = None) -> S3Write:
        """Put ``content``, keeping the previous value first: as its version where the bucket has
        versioning, else as a copy at ``<key><backup_suffix>`` (default ``.backup-<UTC time>``)."""
        backup_version = backup_uri = None
        if backup and previous is not None and previous.exists:
            if self.versioning(location.bucket):
                backup_version = previous.version_id
            else:
                suffix = backup_suffix or time.strftime(".backup-%Y%m%dT%H%M%SZ", time.gmtime())
                copy = S3Location(location.bucket, location.key + suffix)
                try:
                    self._client.copy_object(Bucket=copy.bucket, Key=copy.key,
                                             CopySource={"Bucket": location.bucket, "Key": location.key})
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
                    raise self._error("back up", location, error, " to " + copy.uri + "; nothing was written") from None
                backup_uri = copy.uri
        try:
            answer = self._client.put_object(Bucket=location.bucket, Key=location.key, Body=content.encode("utf-8"),
                                             ContentType="text/plain")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise self._error("write", location, error) from None
        return S3Write(location, _version(answer.get("VersionId")), content_hash(content), backup_version, backup_uri)

    def _error(self, action: str, location: S3Location, error: Exception, more: str = "") -> S3Error:
        where = location.uri if location.key else "bucket %s" % location.bucket
        if isinstance(error, botocore.exceptions.ClientError):
            code = _code(error)
            if code == "NoSuchBucket":
                return S3Error("cannot %s %s%s: bucket %s does not exist" % (action, where, more, location.bucket))
            if code in ("AccessDenied", "403", "AllAccessDisabled"):
                return S3Error("cannot %s %s%s: access denied (check the credentials and the bucket policy)"
                               % (action, where, more))
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
                return S3Error("cannot %s %s%s: the AWS credentials were refused (%s)" % (action, where, more, code))
            message = _one_line(error.response.get("Error", {}).get("Message", ""))
            return S3Error("cannot %s %s%s: %s %s" % (action, where, more, code, message))
        if isinstance(error, botocore.exceptions.NoCredentialsError):
            return S3Error("cannot %s %s%s: no AWS credentials (give access_key/secret_key or profile, or set "
                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)" % (action, where, more))
        if isinstance(error, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                              botocore.exceptions.ReadTimeoutError)):
            return S3Error("cannot %s %s%s: S3 endpoint %s is unreachable (check endpoint_url, region and the network)"
                           % (action, where, more, without_userinfo(self.endpoint_url or "of the region")))
        if isinstance(error, botocore.exceptions.NoRegionError):
            return S3Error("cannot %s %s%s: no AWS region (give region or set AWS_REGION)" % (action, where, more))
        return S3Error("cannot %s %s%s: %s" % (action, where, more, _one_line(error)))


def _code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _version(version_id: Optional[str]) -> Optional[str]:
    """A version id, or None where the bucket keeps none (S3 answers "null" there)."""
    return version_id if version_id and version_id != "null" else None


def _one_line(error: Any) -> str:
    """The text of an error in one line, any URL in it (botocore names the endpoint) without credentials."""
    text = without_userinfo(" ".join(str(error).split()))
    return text if len(text) <= 300 else text[:297] + "..."
