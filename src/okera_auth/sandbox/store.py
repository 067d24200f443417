# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The object store of the sandbox: objects, resource versions, watch events, persistence.

One lock guards everything; objects are never changed in place once stored (every
write stores a new dict), so watch events can hold them without copying. The whole
state is written to one JSON file after each change, atomically, so the server can
be restarted and a test can read what the cluster holds.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Deque, Dict, Iterator, List, Optional, Tuple

from okera_auth.module_utils.errors import FileWriteError
from okera_auth.module_utils.files import write_file_atomic
from . import patches
from .errors import ApiError, SandboxError, already_exists, bad_request, conflict, not_found
from .resources import NAMESPACES, RESOURCE_TYPES, ResourceType, initial_status, prepare
from .selectors import field_matcher, label_matcher

STATE_FORMAT = 1
EVENT_HISTORY = 2000
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def timestamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_NAME_SUFFIX_ALPHABET) for _position in range(length))


def apply_patch(patch_type: str, document: dict, patch) -> dict:
    """``document`` changed by a patch of a type named in PATCH_TYPES (apply is a strategic merge)."""
    if patch_type == "json":
        return patches.json_patch(document, patch)
    if not isinstance(patch, dict):
        raise bad_request("a %s patch must be a JSON object" % patch_type)
    if patch_type == "merge":
        return patches.merge_patch(document, patch)
    return patches.strategic_merge_patch(document, patch)


def patch_type_of(content_type: str) -> str:
    patch_type = PATCH_TYPES.get(content_type)
    if patch_type is None:
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown "
                       "format - accepted media types include: %s" % ", ".join(PATCH_TYPES))
    return patch_type


@dataclass(frozen=True)
class Event:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    rtype: ResourceType
    obj: dict
    previous: Optional[dict] = None  # the object before a MODIFIED event

    def seen_through(self, matches: Callable[[dict], bool]) -> Optional[str]:
        """The event a watch with a selector gets: an object moving out of it is DELETED for it."""
        now = matches(self.obj)
        before = matches(self.previous) if self.previous is not None else now
        if self.type != "MODIFIED" or (now and before):
            return self.type if now else None
        if now:
            return "ADDED"
        return "DELETED" if before else None


class Store:
    """Every object of the cluster, keyed by resource type, namespace and name."""

    def __init__(self, path: Optional[str] = None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: Dict[str, Dict[Tuple[str, str], dict]] = {
            rtype.key: {} for rtype in RESOURCE_TYPES}
        self._revision = 0
        self._events: Deque[Event] = collections.deque(maxlen=EVENT_HISTORY)
        self._history_start = 0  # watches can resume from this resourceVersion on
        self._dirty = False
        self._batch_depth = 0
        # What the simulated kubelet knows of each pod (by uid): not part of the API.
        self.pod_runtime: Dict[str, dict] = {}
        if path and os.path.exists(path):
            self._load()

    # ---- persistence --------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError) as error:
            raise SandboxError("cannot read the sandbox state %s (%s): run okera-auth-sandbox "
                               "init again" % (self.path, getattr(error, "strerror", None) or
                                               "not JSON")) from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise SandboxError("%s is not a sandbox state of this version: run okera-auth-sandbox "
                               "init --force" % self.path)
        self._revision = self._history_start = int(state["resourceVersion"])
        by_kind = {rtype.kind: rtype for rtype in RESOURCE_TYPES}
        for obj in state["objects"]:
            rtype = by_kind[obj["kind"]]
            meta = obj["metadata"]
            self._objects[rtype.key][(meta.get("namespace", ""), meta["name"])] = obj
        self.pod_runtime = state.get("podRuntime", {})

    def _persist(self) -> None:
        if not self.path:
            self._dirty = False
            return
        state = {"format": STATE_FORMAT, "resourceVersion": self._revision,
                 "objects": [obj for rtype in RESOURCE_TYPES
                             for _key, obj in sorted(self._objects[rtype.key].items())],
                 "podRuntime": self.pod_runtime}
        # Compact JSON: the C encoder writes it ~7x faster than an indented one.
        data = json.dumps(state, separators=(",", ":"), sort_keys=True).encode("utf-8")
        try:
            # Readers see the old state or the new one; fsync is skipped: a sandbox
            # that loses its last change on a power cut is acceptable.
            write_file_atomic(self.path, data, mode=0o600, durable=False)
        except FileWriteError as error:
            raise ApiError(500, "InternalError", "the sandbox could not save its state: %s" % error)
        self._dirty = False

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the lock and save once at the end, however many objects change inside."""
        with self.lock:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
                if self._batch_depth == 0 and self._dirty:
                    self._persist()

    def mark_dirty(self) -> None:
        """Note a change of ``pod_runtime``, saved at the end of the current batch."""
        self._dirty = True

    # ---- reading ------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    def find(self, rtype: ResourceType, namespace: str, name: str) -> Optional[dict]:
        """The stored object or None; callers must not change it."""
        return self._objects[rtype.key].get((namespace if rtype.namespaced else "", name))

    def objects(self, rtype: ResourceType, namespace: Optional[str] = None) -> List[dict]:
        """Stored objects of a type (in one namespace, or all), by name; callers must not change them."""
        with self.lock:
            return [obj for (obj_namespace, _name), obj in sorted(self._objects[rtype.key].items())
                    if namespace is None or obj_namespace == namespace]

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict:
        with self.lock:
            obj = self.find(rtype, namespace, name)
            if obj is None:
                raise not_found(rtype.plural, rtype.group, name)
            return copy.deepcopy(obj)

    def list(self, rtype: ResourceType, namespace: Optional[str], label_selector: Optional[str] = None,
             field_selector: Optional[str] = None) -> Tuple[List[dict], int]:
        matches = self.matcher(rtype, label_selector, field_selector)
        with self.lock:
            items = [copy.deepcopy(obj) for obj in self.objects(rtype, namespace) if matches(obj)]
            return items, self._revision

    @staticmethod
    def matcher(rtype: ResourceType, label_selector: Optional[str],
                field_selector: Optional[str]) -> Callable[[dict], bool]:
        labels = label_matcher(label_selector)
        fields = field_matcher(field_selector, rtype.plural)
        return lambda obj: labels(obj) and fields(obj)

    def events_after(self, revision: int) -> Optional[List[Event]]:
        """Events newer than ``revision``, or None when they are no longer kept (410 Gone).

        History starts when the store is loaded: a watch cannot resume from before a restart.
        """
        with self.lock:
            if revision < self._history_start:
                return None
            return [event for event in self._events if event.revision > revision]

    # ---- writing ------------------------------------------------------------------------------

    def _commit(self, rtype: ResourceType, obj: Optional[dict], event_type: str,
                deleted: Optional[dict] = None) -> dict:
        self._revision += 1
        if event_type == "DELETED":
            meta = deleted["metadata"]
            del self._objects[rtype.key][(meta.get("namespace", ""), meta["name"])]
            obj = copy.deepcopy(deleted)
            obj["metadata"]["resourceVersion"] = str(self._revision)
            self.pod_runtime.pop(meta.get("uid"), None)
            previous = None
        else:
            meta = obj["metadata"]
            meta["resourceVersion"] = str(self._revision)
            key = (meta.get("namespace", ""), meta["name"])
            previous = self._objects[rtype.key].get(key)
            self._objects[rtype.key][key] = obj
        if len(self._events) == self._events.maxlen:
            self._history_start = self._events[0].revision
        self._events.append(Event(self._revision, event_type, rtype, obj, previous))
        self._dirty = True
        self.changed.notify_all()
        return obj

    def _finish(self, obj: dict, dry_run: bool) -> dict:
        if self._dirty and self._batch_depth == 0 and not dry_run:
            self._persist()
        return copy.deepcopy(obj)

    def _check_namespace(self, rtype: ResourceType, namespace: str) -> None:
        if rtype.namespaced and self.find(NAMESPACES, "", namespace) is None:
            raise not_found(NAMESPACES.plural, NAMESPACES.group, namespace)

    def _check_body(self, rtype: ResourceType, namespace: str, body: dict) -> dict:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        if body.get("kind") not in (None, rtype.kind) or \
                body.get("apiVersion") not in (None, rtype.api_version):
            raise bad_request("the body is a %s/%s, this URL takes a %s/%s"
                              % (body.get("apiVersion"), body.get("kind"), rtype.api_version, rtype.kind))
        meta = body.get("metadata")
        if meta is None:
            meta = body["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rtype.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace "
                              "sent on the request")
        body["kind"], body["apiVersion"] = rtype.kind, rtype.api_version
        if rtype.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return body

    def create(self, rtype: ResourceType, namespace: str, body: dict, dry_run: bool = False) -> dict:
        with self.lock:
            obj = self._check_body(rtype, namespace, copy.deepcopy(body))
            meta = obj["metadata"]
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise ApiError(422, "Invalid", "%s in version \"%s\" is invalid: metadata.name: "
                                   "Required value: name or generateName is required"
                                   % (rtype.kind, rtype.version))
                meta["name"] = meta["generateName"] + random_suffix()
            self._check_namespace(rtype, namespace)
            if self.find(rtype, namespace, meta["name"]) is not None:
                raise already_exists(rtype.plural, rtype.group, meta["name"])
            for transient in ("resourceVersion", "deletionTimestamp", "managedFields"):
                meta.pop(transient, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = timestamp(self.clock())
            if rtype.has_generation:
                meta["generation"] = 1
            if rtype.has_status:
                obj["status"] = initial_status(rtype)
            prepare(rtype, obj)
            if dry_run:
                meta["resourceVersion"] = str(self._revision)
                return obj
            return self._finish(self._commit(rtype, obj, "ADDED"), dry_run)

    def _update(self, rtype: ResourceType, namespace: str, name: str, obj: dict, old: dict,
                dry_run: bool) -> dict:
        obj = self._check_body(rtype, namespace, obj)
        meta, old_meta = obj["metadata"], old["metadata"]
        if meta.get("name") != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                              % (meta.get("name"), name))
        if meta.get("uid") not in (None, "", old_meta["uid"]):
            raise conflict(rtype.plural, rtype.group, name, "Precondition failed: UID in precondition: "
                           "%s, UID in object meta: %s" % (meta["uid"], old_meta["uid"]))
        if meta.get("resourceVersion") not in (None, "", old_meta["resourceVersion"]):
            raise conflict(rtype.plural, rtype.group, name)
        for kept in ("uid", "creationTimestamp", "resourceVersion"):
            meta[kept] = old_meta[kept]
        meta.pop("managedFields", None)
        if rtype.has_status:
            obj["status"] = copy.deepcopy(old.get("status", {}))
        prepare(rtype, obj, old)
        if rtype.has_generation:
            changed_spec = obj.get("spec") != old.get("spec")
            meta["generation"] = old_meta.get("generation", 1) + (1 if changed_spec else 0)
        if obj == old or dry_run:
            return copy.deepcopy(obj)  # a write that changes nothing keeps the resourceVersion
        return self._finish(self._commit(rtype, obj, "MODIFIED"), dry_run)

    def replace(self, rtype: ResourceType, namespace: str, name: str, body: dict,
                dry_run: bool = False) -> dict:
        with self.lock:
            old = self.find(rtype, namespace, name)
            if old is None:
                raise not_found(rtype.plural, rtype.group, name)
            return self._update(rtype, namespace, name, copy.deepcopy(body), old, dry_run)

    def patch(self, rtype: ResourceType, namespace: str, name: str, content_type: str, patch,
              dry_run: bool = False, field_manager: Optional[str] = None) -> dict:
        patch_type = patch_type_of(content_type)
        with self.lock:
            old = self.find(rtype, namespace, name)
            if patch_type == "apply":
                if not field_manager:
                    raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                                   "fieldManager: Required value: is required for apply patch")
                if old is None:
                    if isinstance(patch, dict):
                        patch.setdefault("metadata", {}).setdefault("name", name)
                    return self.create(rtype, namespace, patch, dry_run)
            if old is None:
                raise not_found(rtype.plural, rtype.group, name)
            patched = apply_patch(patch_type, old, patch)
            return self._update(rtype, namespace, name, patched, old, dry_run)

    def write_status(self, rtype: ResourceType, namespace: str, name: str, status: dict) -> None:
        """What a controller reports; stored (and a new resourceVersion given) only when it changes."""
        with self.lock:
            old = self.find(rtype, namespace, name)
            if old is None or old.get("status") == status:
                return
            obj = copy.deepcopy(old)
            obj["status"] = copy.deepcopy(status)
            self._commit(rtype, obj, "MODIFIED")
            self._finish(obj, False)

    def write_object(self, rtype: ResourceType, obj: dict) -> None:
        """Store a controller's change of an existing object as it is (no validation)."""
        with self.lock:
            self._commit(rtype, copy.deepcopy(obj), "MODIFIED")
            self._finish(obj, False)

    def delete(self, rtype: ResourceType, namespace: str, name: str,
               options: Optional[dict] = None, dry_run: bool = False) -> dict:
        """Remove an object at once (no grace period); returns it as it was."""
        options = options or {}
        with self.lock:
            old = self.find(rtype, namespace, name)
            if old is None:
                raise not_found(rtype.plural, rtype.group, name)
            preconditions = options.get("preconditions") or {}
            for field in ("uid", "resourceVersion"):
                expected = preconditions.get(field)
                if expected and expected != old["metadata"][field]:
                    raise conflict(rtype.plural, rtype.group, name,
                                   "Precondition failed: %s in precondition: %s, %s in object meta: %s"
                                   % (field, expected, field, old["metadata"][field]))
            if rtype is NAMESPACES and name in PROTECTED_NAMESPACES:
                raise ApiError(403, "Forbidden", 'namespaces "%s" is forbidden: this namespace may '
                               "not be deleted" % name, {"name": name, "kind": "namespaces"})
            if dry_run:
                return copy.deepcopy(old)
            orphan = options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents")
            if orphan:
                self._orphan_dependents(old["metadata"]["uid"])
            if rtype is NAMESPACES:
                for other in RESOURCE_TYPES:
                    if other.namespaced:
                        for obj in self.objects(other, name):
                            self._commit(other, None, "DELETED", obj)
            deleted = self._commit(rtype, None, "DELETED", old)
            return self._finish(deleted, dry_run)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for rtype in RESOURCE_TYPES:
            for obj in self.objects(rtype):
                references = obj["metadata"].get("ownerReferences") or []
                if any(reference.get("uid") == owner_uid for reference in references):
                    orphan = copy.deepcopy(obj)
                    orphan["metadata"]["ownerReferences"] = [
                        reference for reference in references if reference.get("uid") != owner_uid]
                    self._commit(rtype, orphan, "MODIFIED")
