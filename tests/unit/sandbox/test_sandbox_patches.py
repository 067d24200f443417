"""The three patch formats and the selectors, as the API server applies them."""
from __future__ import annotations

import pytest

from okera_auth.sandbox.errors import ApiError
from okera_auth.sandbox.patches import json_patch, merge_patch, strategic_merge_patch
from okera_auth.sandbox.selectors import field_matcher, label_matcher

POD_SPEC = {"containers": [
    {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
    {"name": "b", "image": "b:1"}]}


def test_json_patch_operations():
    document = {"a": {"b": [1, 2]}, "c": 1}
    patched = json_patch(document, [
        {"op": "add", "path": "/a/b/-", "value": 3}, {"op": "remove", "path": "/c"},
        {"op": "replace", "path": "/a/b/0", "value": 0}, {"op": "copy", "from": "/a/b", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e~1f"}, {"op": "test", "path": "/a/b/2", "value": 3}])
    assert patched == {"a": {"b": [0, 2, 3]}, "e/f": [0, 2, 3]}
    assert document == {"a": {"b": [1, 2]}, "c": 1}


@pytest.mark.parametrize("operations, code", [
    ([{"op": "test", "path": "/c", "value": 2}], 422),
    ([{"op": "remove", "path": "/missing"}], 422),
    ([{"op": "jump", "path": "/c"}], 400),
    ({"op": "add"}, 400),
])
def test_json_patch_failures(operations, code):
    with pytest.raises(ApiError) as raised:
        json_patch({"c": 1}, operations)
    assert raised.value.code == code


def test_merge_patch_replaces_lists_and_null_deletes():
    assert merge_patch({"a": 1, "b": {"c": 1, "d": 2}, "l": [1, 2]},
                       {"a": None, "b": {"c": None, "e": 3}, "l": [3]}) == {"b": {"d": 2, "e": 3}, "l": [3]}


def test_strategic_merge_merges_containers_and_env_by_name():
    patched = strategic_merge_patch(POD_SPEC, {"containers": [
        {"name": "a", "env": [{"name": "Y", "value": "two"}, {"name": "Z", "value": "3"}]},
        {"name": "c", "image": "c:1"}]})
    assert [container["name"] for container in patched["containers"]] == ["a", "b", "c"]
    assert patched["containers"][0]["image"] == "a:1"
    assert patched["containers"][0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "two"},
                                               {"name": "Z", "value": "3"}]


def test_strategic_merge_directives():
    deleted = strategic_merge_patch(POD_SPEC, {"containers": [{"name": "b", "$patch": "delete"}]})
    assert [container["name"] for container in deleted["containers"]] == ["a"]
    replaced = strategic_merge_patch(POD_SPEC, {"containers": [{"name": "n", "image": "n"}, {"$patch": "replace"}]})
    assert replaced["containers"] == [{"name": "n", "image": "n"}]
    assert strategic_merge_patch({"m": {"a": 1, "b": 2}}, {"m": {"$patch": "replace", "c": 3}}) == {"m": {"c": 3}}
    assert strategic_merge_patch({"finalizers": ["x"]}, {"finalizers": ["y", "x"]}) == {"finalizers": ["x", "y"]}
    assert strategic_merge_patch({"args": ["1", "2"]}, {"args": ["3"]}) == {"args": ["3"]}
    assert strategic_merge_patch({"l": ["a", "b"]}, {"$deleteFromPrimitiveList/l": ["a"]}) == {"l": ["b"]}


@pytest.mark.parametrize("selector, matched", [
    ("app=x", ["x"]), ("app==x", ["x"]), ("app!=x", ["y", None]), ("app in (x, y)", ["x", "y"]),
    ("app notin (x)", ["y", None]), ("app", ["x", "y"]), ("!app", [None]), ("app=x,tier=web", ["x"]),
    ("", ["x", "y", None]),
])
def test_label_selectors(selector, matched):
    objects = [{"metadata": {"labels": {"app": "x", "tier": "web"}}}, {"metadata": {"labels": {"app": "y"}}},
               {"metadata": {}}]
    matches = label_matcher(selector)
    assert [obj["metadata"].get("labels", {}).get("app") for obj in objects if matches(obj)] == matched


def test_field_selectors():
    pod = {"metadata": {"name": "p", "namespace": "default"}, "status": {"phase": "Running"}}
    assert field_matcher("metadata.name=p,status.phase=Running", "pods")(pod)
    assert not field_matcher("metadata.name!=p", "pods")(pod)
    with pytest.raises(ApiError) as raised:
        field_matcher("status.phase=Running", "secrets")
    assert raised.value.code == 400 and "field label not supported" in raised.value.message
    with pytest.raises(ApiError):
        label_matcher("app in x")
