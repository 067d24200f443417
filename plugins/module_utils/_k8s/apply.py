# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create or replace Kubernetes objects from manifests: the work behind the k8s_apply module.

An object counts as unchanged when the live one carries the SHA-256 of the manifest in the
annotation APPLIED_HASH_ANNOTATION (so a field removed from the manifest is noticed, which a plain
comparison against a defaulted live object would miss) and still holds every field the manifest
sets (so an edit made by someone else is noticed too). Results name objects, never their data.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .._polling import pauses
from .auth import ClusterError
from .client import api_path, request

APPLIED_HASH_ANNOTATION = "okera.auth/applied-sha256"

# (apiVersion, kind) -> resource plural: the kinds a sidecar deployment and the rotation's CronJob
# are made of.
SUPPORTED_KINDS: Dict[Tuple[str, str], str] = {
    ("v1", "Secret"): "secrets",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "Pod"): "pods",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("apps/v1", "DaemonSet"): "daemonsets",
    ("batch/v1", "CronJob"): "cronjobs",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
}

# A pod's spec is immutable: a changed Pod is deleted, then created again.
RECREATED_KINDS = frozenset({"Pod"})


@dataclass
class Outcome:
    """What was (or, in check mode, would be) done to one object."""

    kind: str
    namespace: str
    name: str
    action: str  # created, replaced, recreated or unchanged

    def as_dict(self) -> Dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return "%s %s/%s: %s" % (self.kind, self.namespace, self.name, self.action)


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON (key order and whitespace do not matter)."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def holds(live: Any, wanted: Any) -> bool:
    """Whether `live` holds every field `wanted` sets, with the same values.

    Maps may carry more keys (server defaults); lists compare element by element and may carry
    more trailing elements (e.g. a service-account volume the server appends). An empty map or
    list is held by an absent one, as servers omit empty fields.
    """
    if isinstance(wanted, dict):
        if not wanted:
            return live in (None, {})
        return isinstance(live, dict) and all(holds(live.get(key), value) for key, value in wanted.items())
    if isinstance(wanted, list):
        if not wanted:
            return live in (None, [])
        return (isinstance(live, list) and len(live) >= len(wanted)
                and all(holds(item, value) for item, value in zip(live, wanted)))
    return live == wanted


def _identify(manifest: Any, index: int, default_namespace: str) -> Tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name) of a manifest, or a one-line ClusterError."""
    if not isinstance(manifest, dict):
        raise ClusterError("definition %d is not a mapping; give Kubernetes objects as mappings" % index)
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    metadata = manifest.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not api_version or not kind or not name:
        raise ClusterError("definition %d lacks apiVersion, kind or metadata.name; every object needs all three" % index)
    if (api_version, kind) not in SUPPORTED_KINDS:
        raise ClusterError("definition %d is %s %s, which k8s_apply does not handle; supported: %s" % (
            index, api_version, kind, ", ".join("%s %s" % pair for pair in SUPPORTED_KINDS)))
    return api_version, kind, metadata.get("namespace") or default_namespace, name


def _path(api_version: str, kind: str, namespace: str, name: Optional[str] = None) -> str:
    # api_path takes a named group with its version ("apps/v1"); the core group is "".
    group_version = api_version if "/" in api_version else ""
    return api_path(namespace, SUPPORTED_KINDS[(api_version, kind)], name, group_version)


def _read(api_client: Any, api_version: str, kind: str, namespace: str, name: str) -> Optional[Dict[str, Any]]:
    """The live object as the server sent it, or None when it does not exist."""
    try:
        return request(api_client, "get %s %s/%s" % (kind, namespace, name), "GET",
                       _path(api_version, kind, namespace, name))
    except ClusterError as error:
        if error.status == 404:
            return None
        raise


def _wait_until_gone(api_client: Any, api_version: str, kind: str, namespace: str, name: str,
                     timeout: float, sleep: float) -> None:
    deadline = time.monotonic() + timeout
    pause = pauses(sleep, deadline, time.monotonic)
    while _read(api_client, api_version, kind, namespace, name) is not None:
        if time.monotonic() >= deadline:
            raise ClusterError("%s %s/%s was deleted to be created again but still exists after %s s; "
                               "raise wait_timeout or look at its finalizers" % (kind, namespace, name, timeout))
        time.sleep(next(pause))


def apply_one(api_client: Any, manifest: Dict[str, Any], index: int, default_namespace: str,
              check_mode: bool = False, wait_timeout: float = 120, wait_sleep: float = 1) -> Outcome:
    """Create the object, replace it when it differs (delete and create for a Pod), or leave it."""
    api_version, kind, namespace, name = _identify(manifest, index, default_namespace)
    what = "%s %s/%s" % (kind, namespace, name)
    desired = copy.deepcopy(manifest)
    metadata = desired["metadata"]
    metadata["namespace"] = namespace
    metadata.setdefault("annotations", {})[APPLIED_HASH_ANNOTATION] = manifest_hash(manifest)

    live = _read(api_client, api_version, kind, namespace, name)
    if live is None:
        action = "created"
    elif holds(live, desired):
        return Outcome(kind, namespace, name, "unchanged")
    else:
        action = "recreated" if kind in RECREATED_KINDS else "replaced"
    if check_mode:
        return Outcome(kind, namespace, name, action)

    if action == "replaced":
        metadata["resourceVersion"] = live["metadata"]["resourceVersion"]
        request(api_client, "replace " + what, "PUT", _path(api_version, kind, namespace, name), desired)
        return Outcome(kind, namespace, name, action)
    if action == "recreated":
        request(api_client, "delete " + what, "DELETE", _path(api_version, kind, namespace, name))
        _wait_until_gone(api_client, api_version, kind, namespace, name, wait_timeout, wait_sleep)
    request(api_client, "create " + what, "POST", _path(api_version, kind, namespace), desired)
    return Outcome(kind, namespace, name, action)


def apply_all(api_client: Any, manifests: List[Any], default_namespace: str = "default",
              check_mode: bool = False, wait_timeout: float = 120, wait_sleep: float = 1) -> Iterator[Outcome]:
    """Apply the manifests in order (a Secret before the pods that mount it), yielding each outcome
    as it happens, so a caller can report what was done before a failure. All are checked first."""
    for index, manifest in enumerate(manifests):
        _identify(manifest, index, default_namespace)
    for index, manifest in enumerate(manifests):
        yield apply_one(api_client, manifest, index, default_namespace, check_mode, wait_timeout, wait_sleep)
