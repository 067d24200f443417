"""Restarts that finish: only recreated pods are waited for, and an unfinished rotation is recognised."""
from __future__ import annotations

import hashlib
import json

import pytest

from okera_auth.module_utils._k8s.rollout import pods_to_replace, recreator, replacement_state
from okera_auth.module_utils.system_token import ROTATION_MARKER, unfinished_rotation, value_hash


def _pod(name, uid, owner=None, ready=True, phase="Running"):
    metadata = {"name": name, "uid": uid}
    if owner:
        metadata["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": metadata, "status": {"phase": phase, "conditions": conditions}}


REST = _pod("cdas-rest-server-7d9f-abcde", "u1", ("ReplicaSet", "cdas-rest-server-7d9f"))
WORKER = _pod("cerebro-worker-0", "u2", ("StatefulSet", "cerebro-worker"))
BARE = _pod("debug-shell", "u3")
DONE = _pod("migrate-x", "u4", ("Job", "migrate"), ready=False, phase="Succeeded")


def test_what_recreates_a_pod_is_its_controller():
    assert recreator(REST) == "ReplicaSet cdas-rest-server-7d9f"
    assert recreator(BARE) is None
    not_controller = _pod("p", "u", None)
    not_controller["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "x"}]
    assert recreator(not_controller) is None


def test_bare_and_finished_pods_are_left_alone_unless_chosen():
    replace, skipped = pods_to_replace([REST, WORKER, BARE, DONE], selected=False)
    assert [pod["metadata"]["name"] for pod in replace] == ["cdas-rest-server-7d9f-abcde", "cerebro-worker-0"]
    assert skipped == {"debug-shell": "no controller recreates it (it would be gone for good)",
                       "migrate-x": "it has finished (Succeeded)"}
    replace, skipped = pods_to_replace([REST, BARE, DONE], selected=True)
    assert [pod["metadata"]["name"] for pod in replace] == ["cdas-rest-server-7d9f-abcde", "debug-shell"]
    assert list(skipped) == ["migrate-x"]


def test_a_pod_left_alone_never_counts_as_a_replacement():
    new_rest = _pod("cdas-rest-server-7d9f-fghij", "u9", ("ReplicaSet", "cdas-rest-server-7d9f"))
    # Without known_uids the bare pod (ready, not deleted) would pass for the replacement.
    assert replacement_state([BARE], ["u1"], 1) == (True, "1/1 replacement pod(s) ready")
    assert replacement_state([BARE], ["u1"], 1, known_uids=["u1", "u3"]) == (False, "0/1 replacement pod(s) ready")
    assert replacement_state([BARE, new_rest], ["u1"], 1, known_uids=["u1", "u3"])[0]


TOKEN = "header.payload.signature"


def _marker(**record) -> str:
    return json.dumps(dict({"started": "2026-12-02T10:00:00Z", "by": "prod-eu",
                            "keys": {"SYSTEM_TOKEN_0": value_hash(TOKEN)}}, **record))


def test_the_marker_name_is_the_roles():
    from pathlib import Path

    import yaml

    variables = Path(__file__).resolve().parents[3] / "roles" / "system_token" / "vars" / "main.yml"
    assert yaml.safe_load(variables.read_text())["_system_token_marker"] == ROTATION_MARKER


def test_no_marker_is_no_unfinished_rotation():
    assert unfinished_rotation(None, {"SYSTEM_TOKEN_0": TOKEN}) is None


def test_a_marker_says_what_was_written_and_whether_it_is_still_there():
    found = unfinished_rotation(_marker(), {"SYSTEM_TOKEN_0": TOKEN})
    assert found == {"started": "2026-12-02T10:00:00Z", "by": "prod-eu", "secret_keys": ["SYSTEM_TOKEN_0"],
                     "same_tokens": True,
                     "summary": "a rotation of SYSTEM_TOKEN_0 started 2026-12-02T10:00:00Z from prod-eu did not "
                                "finish: the Secret holds the token(s) it wrote, which the workloads may not run yet"}
    changed = unfinished_rotation(_marker(), {"SYSTEM_TOKEN_0": "another.token.value"})
    assert changed["same_tokens"] is False and changed["summary"].endswith("the Secret changed since; the workloads "
                                                                           "may not run what it holds")


@pytest.mark.parametrize("marker", ["", "not json", "[1, 2]", '{"keys": "x", "started": 5}'])
def test_a_marker_that_cannot_be_read_still_means_unfinished(marker):
    found = unfinished_rotation(marker, {"SYSTEM_TOKEN_0": TOKEN})
    assert found["same_tokens"] is False and found["secret_keys"] == []
    assert found["summary"].startswith("a rotation of the token(s) did not finish")


def test_value_hash_is_sha256_of_the_text():
    assert value_hash(TOKEN) == "sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()
