# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The three patch formats of the Kubernetes API: JSON patch, JSON merge patch, strategic merge.

Strategic merge knows the merge keys of the lists the collection touches (containers,
env, volumes, ports, ...); lists it does not know are replaced, as they are for any
list without a ``patchMergeKey`` on a real server.
"""

from __future__ import annotations

import copy
from typing import Any, List

from okera_auth.module_utils.errors import shown
from .errors import ApiError, bad_request

# patchMergeKey of the core/v1 and apps/v1 lists, by field name.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "ports": "containerPort", "imagePullSecrets": "name", "ownerReferences": "uid",
    "conditions": "type", "hostAliases": "ip", "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}
# Lists of scalars with patchStrategy "merge": a patch adds to the set.
MERGED_SETS = ("finalizers",)


def _patch_failed(message: str) -> ApiError:
    return ApiError(422, "Invalid", "the patch could not be applied: %s" % message)


# ---- JSON patch (RFC 6902) -------------------------------------------------------------------

def _pointer(path: Any) -> List[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise bad_request("invalid JSON patch path %s: a JSON pointer starts with /" % shown(path))
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _child(container: Any, token: str, path: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise _patch_failed("the path %s does not exist" % path)
        return container[token]
    if isinstance(container, list):
        return container[_index(container, token, path, allow_end=False)]
    raise _patch_failed("the path %s does not exist" % path)


def _index(container: list, token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise _patch_failed("%s is not an index into a list" % path)
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise _patch_failed("the index in %s is out of range" % path)
    return index


def _parent(document: Any, tokens: List[str], path: str) -> Any:
    target = document
    for token in tokens[:-1]:
        target = _child(target, token, path)
    return target


def _add(document: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(document, tokens, path)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], path, allow_end=True), value)
    else:
        raise _patch_failed("the parent of %s is not an object or a list" % path)
    return document


def _remove(document: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise _patch_failed("the whole document cannot be removed")
    parent = _parent(document, tokens, path)
    _child(parent, tokens[-1], path)  # must exist
    if isinstance(parent, dict):
        del parent[tokens[-1]]
    else:
        del parent[int(tokens[-1])]
    return document


def _get(document: Any, path: str) -> Any:
    target = document
    for token in _pointer(path):
        target = _child(target, token, path)
    return target


def json_patch(document: dict, operations: Any) -> dict:
    """Apply an RFC 6902 operation list to a copy of ``document``."""
    if not isinstance(operations, list):
        raise bad_request("a JSON patch is a list of operations")
    result = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise bad_request("every JSON patch operation needs \"op\" and \"path\"")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise bad_request("the JSON patch operation %s of %s needs a \"value\"" % (op, path))
        if op == "add":
            result = _add(result, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            result = _remove(result, path)
        elif op == "replace":
            result = _add(_remove(result, path), path, copy.deepcopy(operation["value"])) \
                if _pointer(path) else copy.deepcopy(operation["value"])
        elif op in ("move", "copy"):
            source = operation.get("from")
            value = copy.deepcopy(_get(result, source))
            if op == "move":
                result = _remove(result, source)
            result = _add(result, path, value)
        elif op == "test":
            if _get(result, path) != operation["value"]:
                raise _patch_failed("test of the value at %s failed" % path)
        else:
            raise bad_request("unknown JSON patch operation %s" % shown(op))
    if not isinstance(result, dict):
        raise _patch_failed("the patched document is not an object")
    return result


# ---- JSON merge patch (RFC 7386) -------------------------------------------------------------

def merge_patch(document: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch; returns a new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---- Strategic merge patch -------------------------------------------------------------------

def _merge_keyed_list(original: list, patch: list, key: str) -> list:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(item) for item in patch
                if not (isinstance(item, dict) and item.get("$patch") == "replace")]
    result = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict):
            result.append(copy.deepcopy(item))
            continue
        position = next((number for number, existing in enumerate(result)
                         if isinstance(existing, dict) and key in item
                         and existing.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
        elif position is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[position] = strategic_merge_patch(result[position], item)
    return result


def strategic_merge_patch(document: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (the default of ``kubectl patch``); returns a new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    result = copy.deepcopy(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = strategic_merge_patch(result.get(key), value)
        elif isinstance(value, list) and key in MERGE_KEYS:
            original = result.get(key) if isinstance(result.get(key), list) else []
            result[key] = _merge_keyed_list(original, value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in MERGED_SETS:
            original = result.get(key) if isinstance(result.get(key), list) else []
            result[key] = original + [item for item in value if item not in original]
        else:
            result[key] = copy.deepcopy(value)
    retained = patch.get("$retainKeys")
    if isinstance(retained, list):
        result = {key: value for key, value in result.items() if key in retained}
    return result
