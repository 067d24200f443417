# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and setting keys of a Secret's data, with optimistic concurrency.

Values travel as bytes inside this module and leave it only towards the API server (base64) or a
0600 backup file; results carry key names and SHA-256 hashes.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from ..files import write_file_atomic
from .auth import ClusterError
from .client import api_path, request

MERGE_PATCH = "application/merge-patch+json"
DEFAULT_CONFLICT_RETRIES = 5
_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def value_hash(value: Optional[bytes]) -> Optional[str]:
    """How a value is shown anywhere: "sha256:<hex>" (None for an absent key)."""
    return None if value is None else "sha256:" + hashlib.sha256(value).hexdigest()


@dataclass
class SecretData:
    """A Secret as read: decoded data and the version it was read at (exists False when absent)."""

    namespace: str
    name: str
    exists: bool
    resource_version: Optional[str] = None
    type: Optional[str] = None
    data: Dict[str, bytes] = field(default_factory=dict)
    # metadata.annotations; callers pass on only the ones they name (kubectl's
    # last-applied-configuration annotation may hold the whole Secret).
    annotations: Dict[str, str] = field(default_factory=dict)

    def hashes(self, keys: Optional[List[str]] = None) -> Dict[str, Optional[str]]:
        wanted = sorted(self.data) if keys is None else keys
        return {key: value_hash(self.data.get(key)) for key in wanted}


@dataclass
class SetResult:
    changed: bool
    created: bool
    changed_keys: List[str]
    before: Dict[str, Optional[str]]
    after: Dict[str, Optional[str]]
    resource_version: Optional[str]
    conflicts: int = 0
    backup_file: Optional[str] = None
    changed_annotations: List[str] = field(default_factory=list)
    annotations_before: Dict[str, Optional[str]] = field(default_factory=dict)


def _describe(namespace: str, name: str) -> str:
    return "Secret %s/%s" % (namespace, name)


def _decode_data(namespace: str, name: str, data: Optional[Mapping[str, str]]) -> Dict[str, bytes]:
    decoded = {}
    for key, text in (data or {}).items():
        try:
            decoded[key] = base64.b64decode(text or "", validate=True)
        except (binascii.Error, ValueError):
            raise ClusterError("%s key %s is not valid base64 in the API answer" % (_describe(namespace, name), key)) from None
    return decoded


def _write(api_client: Any, what: str, method: str, path: str, body: Any, content_type: str = "application/json") -> Dict[str, Any]:
    """A write request; a failure without an answer (or 500/504) is marked write_unknown: it may have been stored."""
    try:
        return request(api_client, what, method, path, body, content_type)
    except ClusterError as error:
        error.write_unknown = error.status in (None, 500, 504)
        raise


def read_secret(api_client: Any, namespace: str, name: str) -> SecretData:
    """The Secret's decoded data; a missing Secret is returned with exists=False."""
    try:
        secret = request(api_client, "get " + _describe(namespace, name), "GET", api_path(namespace, "secrets", name))
    except ClusterError as error:
        if error.status == 404:  # an answer, not a failure
            return SecretData(namespace, name, exists=False)
        raise
    metadata = secret.get("metadata") or {}
    return SecretData(namespace, name, True, metadata.get("resourceVersion"), secret.get("type"),
                      _decode_data(namespace, name, secret.get("data")), dict(metadata.get("annotations") or {}))


def _encode(value: Optional[bytes]) -> Optional[str]:
    return None if value is None else base64.b64encode(value).decode("ascii")


def backup_file_name(directory: str, namespace: str, name: str, label: str = "") -> str:
    """<dir>/<label>_<namespace>_<name>_<UTC timestamp>.json, with unsafe characters replaced."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    parts = [part for part in (label, namespace, name, stamp) if part]
    return os.path.join(directory, "_".join(_UNSAFE_IN_FILE_NAME.sub("-", part) for part in parts) + ".json")


def write_backup(path: str, current: SecretData, keys: List[str]) -> str:
    """Write the previous values of `keys` as a merge patch that restores them (0600, atomic).

    Keys that did not exist are null, so `kubectl patch secret NAME --type merge --patch-file
    FILE` puts the Secret back as it was for those keys.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    document = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": current.name, "namespace": current.namespace},
        "data": {key: _encode(current.data.get(key)) for key in keys},
    }
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    write_file_atomic(path, text.encode("utf-8"), mode=0o600)
    return path


class UnexpectedValues(ClusterError):
    """The Secret does not hold what the caller expected (changed meanwhile): nothing was written."""

    def __init__(self, message: str, keys: List[str]) -> None:
        super().__init__(message, 412)
        self.keys = keys


def _check_expected(current: SecretData, expect_hashes: Optional[Mapping[str, Optional[str]]]) -> None:
    if not expect_hashes:
        return
    held = current.hashes(sorted(expect_hashes))
    unexpected = [key for key in sorted(expect_hashes) if held[key] != expect_hashes[key]]
    if unexpected:
        raise UnexpectedValues("%s no longer holds the expected value of %s (changed meanwhile by someone else): "
                               "nothing was written" % (_describe(current.namespace, current.name),
                                                        ", ".join(unexpected)), unexpected)


def set_secret_data(api_client: Any, namespace: str, name: str, values: Mapping[str, Optional[bytes]],
                    create: bool = False, secret_type: str = "Opaque", check_mode: bool = False,
                    conflict_retries: int = DEFAULT_CONFLICT_RETRIES,
                    backup_path: Optional[str] = None,
                    annotations: Optional[Mapping[str, Optional[str]]] = None,
                    expect_hashes: Optional[Mapping[str, Optional[str]]] = None) -> SetResult:
    """Set (or, for None, remove) keys of the Secret's data, and annotations, in one patch;
    only what differs is patched.

    The patch carries the resourceVersion that was read, so a concurrent writer makes the API
    server answer 409; the Secret is then read again and the patch recomputed, at most
    `conflict_retries` more times. A backup is written only when data changes. With
    `expect_hashes` (key to value_hash, None for absent) nothing is written unless the Secret, as
    read for the patch, holds exactly those values: UnexpectedValues otherwise.
    """
    keys = sorted(values)
    wanted_annotations = dict(annotations or {})
    conflicts = 0
    while True:
        current = read_secret(api_client, namespace, name)
        _check_expected(current, expect_hashes)
        before = current.hashes(keys)
        after = {key: value_hash(values[key]) for key in keys}
        annotations_before = {key: current.annotations.get(key) for key in sorted(wanted_annotations)}
        if not current.exists:
            if not create:
                raise ClusterError("%s does not exist: create it first, or set create: true"
                                   % _describe(namespace, name), 404)
            changed_keys = [key for key in keys if values[key] is not None]
            changed_annotations = sorted(key for key, value in wanted_annotations.items() if value is not None)
        else:
            changed_keys = [key for key in keys if current.data.get(key) != values[key]]
            changed_annotations = sorted(key for key, value in wanted_annotations.items()
                                         if current.annotations.get(key) != value)
        if not changed_keys and not changed_annotations:
            return SetResult(False, False, [], before, after, current.resource_version, conflicts,
                             annotations_before=annotations_before)
        if check_mode:
            return SetResult(True, not current.exists, changed_keys, before, after, current.resource_version, conflicts,
                             changed_annotations=changed_annotations, annotations_before=annotations_before)
        backup_file = (write_backup(backup_path, current, changed_keys)
                       if backup_path and current.exists and changed_keys else None)
        annotation_patch = {key: wanted_annotations[key] for key in changed_annotations}
        if not current.exists:
            metadata = {"name": name, "namespace": namespace}
            if annotation_patch:
                metadata["annotations"] = annotation_patch
            body = {"apiVersion": "v1", "kind": "Secret", "type": secret_type, "metadata": metadata,
                    "data": {key: _encode(values[key]) for key in changed_keys}}
            try:
                created = _write(api_client, "create " + _describe(namespace, name), "POST",
                                 api_path(namespace, "secrets"), body)
            except ClusterError as error:
                if error.status == 409 and conflicts < conflict_retries:  # created meanwhile by someone else
                    conflicts += 1
                    continue
                raise
            version = (created.get("metadata") or {}).get("resourceVersion")
            return SetResult(True, True, changed_keys, before, after, version, conflicts,
                             changed_annotations=changed_annotations, annotations_before=annotations_before)
        patch: Dict[str, Any] = {"metadata": {"resourceVersion": current.resource_version}}
        if changed_keys:
            patch["data"] = {key: _encode(values[key]) for key in changed_keys}
        if annotation_patch:
            patch["metadata"]["annotations"] = annotation_patch
        try:
            patched = _write(api_client, "patch " + _describe(namespace, name), "PATCH",
                             api_path(namespace, "secrets", name), patch, MERGE_PATCH)
        except ClusterError as error:
            if error.status == 409 and conflicts < conflict_retries:
                conflicts += 1
                continue
            if error.status == 409:
                raise ClusterError("patch %s: it kept changing under us (%d conflicts); run again when "
                                   "other writers are done" % (_describe(namespace, name), conflicts + 1), 409) from None
            raise
        version = (patched.get("metadata") or {}).get("resourceVersion")
        return SetResult(True, False, changed_keys, before, after, version, conflicts, backup_file,
                         changed_annotations, annotations_before)
