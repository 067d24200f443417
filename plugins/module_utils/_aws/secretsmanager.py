# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Secrets Manager secret's staging labels (AWSCURRENT, AWSPENDING, AWSPREVIOUS, ...) set to values.

Secrets Manager keeps every value of a secret as a version and names versions with staging labels;
readers get AWSCURRENT. ``set_stages`` makes each label name a version holding the wanted value: it
moves the label to a version that already holds it (so a rollback returns to the very version that
was current), else puts a new version with that label; a null value removes the label. AWSCURRENT
is set first because Secrets Manager then moves AWSPREVIOUS to the version it left. No message
ever carries a secret's value or a credential.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from .._http import without_userinfo
from ..errors import OkeraAuthError
from .s3 import AWS_ARGUMENT_SPEC, HAS_BOTO3, BOTO3_IMPORT_ERROR, REQUEST_TIMEOUT, _code, _one_line

if HAS_BOTO3:
    import boto3
    import botocore.config
    import botocore.exceptions

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"


class SecretsManagerError(OkeraAuthError):
    """A secret could not be read or changed; the message says why and what to check."""


@dataclass
class SecretVersion:
    version_id: str
    stages: List[str] = field(default_factory=list)
    content: Optional[str] = None

    @property
    def sha256(self) -> Optional[str]:
        return "sha256:" + hashlib.sha256(self.content.encode("utf-8")).hexdigest() if self.content is not None else None


@dataclass(frozen=True)
class StageStep:
    """One change of a label: to an existing version (move_to), to a new version (content), or off (neither)."""

    label: str
    remove_from: Optional[str]
    move_to: Optional[str] = None
    content: Optional[str] = None


def next_step(versions: List[SecretVersion], label: str, wanted: Optional[str]) -> Optional[StageStep]:
    """What makes ``label`` name a version holding ``wanted`` (None: no version); None when it already does."""
    holder = next((version for version in versions if label in version.stages), None)
    if wanted is None:
        return StageStep(label, holder.version_id) if holder else None
    if holder is not None and holder.content == wanted:
        return None
    same = next((version for version in versions if version.content == wanted), None)
    if same is not None:
        return StageStep(label, holder.version_id if holder else None, move_to=same.version_id)
    return StageStep(label, holder.version_id if holder else None, content=wanted)


def simulate(versions: List[SecretVersion], step: StageStep) -> List[SecretVersion]:
    """The versions after ``step`` as Secrets Manager does it (AWSPREVIOUS follows a moved AWSCURRENT); for check mode."""
    after = [SecretVersion(version.version_id, [stage for stage in version.stages if stage != step.label], version.content)
             for version in versions]
    target = step.move_to
    if step.content is not None:
        target = "(new version %d)" % len(after)
        after.append(SecretVersion(target, [], step.content))
    for version in after:
        if version.version_id == target:
            version.stages.append(step.label)
    if step.label == CURRENT and step.remove_from:
        for version in after:
            if PREVIOUS in version.stages:
                version.stages.remove(PREVIOUS)
            if version.version_id == step.remove_from:
                version.stages.append(PREVIOUS)
    return after


def stages_summary(versions: List[SecretVersion]) -> Dict[str, Dict[str, Optional[str]]]:
    """Label -> version id and hash of its value: safe to show."""
    return {stage: {"version_id": version.version_id, "sha256": version.sha256}
            for version in versions for stage in version.stages}


class SecretStages:
    """One Secrets Manager client (AWS or any endpoint that speaks its API) and the label changes the rotation needs."""

    def __init__(self, secret_id: str, params: Mapping[str, Any]) -> None:
        if not HAS_BOTO3:
            raise SecretsManagerError("boto3 is required for Secrets Manager: pip install boto3 (%s)" % BOTO3_IMPORT_ERROR)
        self.secret_id = secret_id
        self.endpoint_url = params.get("endpoint_url")
        try:
            session = boto3.session.Session(
                aws_access_key_id=params.get("access_key"), aws_secret_access_key=params.get("secret_key"),
                aws_session_token=params.get("session_token"), profile_name=params.get("profile"),
                region_name=params.get("region"))
            config = botocore.config.Config(connect_timeout=REQUEST_TIMEOUT, read_timeout=REQUEST_TIMEOUT,
                                            retries={"max_attempts": 2})
            self._client = session.client("secretsmanager", endpoint_url=self.endpoint_url,
                                          verify=params.get("validate_certs", True), config=config)
        except botocore.exceptions.ProfileNotFound as error:
            raise SecretsManagerError("AWS profile %s is not configured: check profile" % error.kwargs.get("profile")) from None
        except (botocore.exceptions.BotoCoreError, ValueError) as error:
            raise SecretsManagerError("cannot set up the Secrets Manager client: %s" % _one_line(error)) from None

    def versions(self) -> List[SecretVersion]:
        """The versions that carry a label, with their values."""
        try:
            labels = self._client.describe_secret(SecretId=self.secret_id).get("VersionIdsToStages", {})
            found = [SecretVersion(version_id, list(stages)) for version_id, stages in sorted(labels.items()) if stages]
            for version in found:
                answer = self._client.get_secret_value(SecretId=self.secret_id, VersionId=version.version_id)
                version.content = answer.get("SecretString")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise self._error("read", error) from None
        return found

    def apply(self, step: StageStep) -> None:
        try:
            if step.content is not None:
                self._client.put_secret_value(SecretId=self.secret_id, SecretString=step.content, VersionStages=[step.label])
                return
            arguments = {"SecretId": self.secret_id, "VersionStage": step.label}
            if step.remove_from:
                arguments["RemoveFromVersionId"] = step.remove_from
            if step.move_to:
                arguments["MoveToVersionId"] = step.move_to
            self._client.update_secret_version_stage(**arguments)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise self._error("set the label %s of" % step.label, error) from None

    def _error(self, action: str, error: Exception) -> SecretsManagerError:
        where = "secret %s" % self.secret_id
        if isinstance(error, botocore.exceptions.ClientError):
            code = _code(error)
            if code == "ResourceNotFoundException":
                return SecretsManagerError("cannot %s %s: it does not exist (create it with the current key as its value)"
                                           % (action, where))
            if code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                        "ExpiredTokenException"):
                return SecretsManagerError("cannot %s %s: the AWS credentials were refused or lack permission (%s)"
                                           % (action, where, code))
            message = _one_line(error.response.get("Error", {}).get("Message", ""))
            return SecretsManagerError("cannot %s %s: %s %s" % (action, where, code, message))
        if isinstance(error, botocore.exceptions.NoCredentialsError):
            return SecretsManagerError("cannot %s %s: no AWS credentials (give access_key/secret_key or profile, or set "
                                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)" % (action, where))
        if isinstance(error, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                              botocore.exceptions.ReadTimeoutError)):
            return SecretsManagerError("cannot %s %s: the Secrets Manager endpoint %s is unreachable (check endpoint_url, "
                                       "region and the network)" % (action, where, without_userinfo(self.endpoint_url or "of the region")))
        if isinstance(error, botocore.exceptions.NoRegionError):
            return SecretsManagerError("cannot %s %s: no AWS region (give region or set AWS_REGION)" % (action, where))
        return SecretsManagerError("cannot %s %s: %s" % (action, where, _one_line(error)))


def ordered_labels(wanted: Mapping[str, Optional[str]]) -> List[str]:
    """AWSCURRENT first: moving it moves AWSPREVIOUS, which the other labels may then set."""
    return sorted(wanted, key=lambda label: label != CURRENT)


__all__ = ["AWS_ARGUMENT_SPEC", "SecretStages", "SecretsManagerError", "next_step", "simulate", "stages_summary",
           "ordered_labels", "HAS_BOTO3", "BOTO3_IMPORT_ERROR"]
