"""The signing-key rotation's decision: each stage, its resumption, the grace period, refusals in one line."""
from __future__ import annotations

import json

import pytest

from okera_auth.module_utils import keys, signing_key
from okera_auth.module_utils.errors import KeyLoadError
from okera_auth.module_utils.signing_key import SigningKeyRotationError, plan_rotation


def _private(key) -> str:
    return keys.private_key_pem(key)


@pytest.fixture
def old(rsa_private_key) -> str:
    return _private(rsa_private_key)


@pytest.fixture
def new(other_rsa_private_key) -> str:
    return _private(other_rsa_private_key)


def _public(private: str) -> str:
    return keys.public_key_pem(keys.load_private_key(private).public_key())


def _fp(private: str) -> str:
    return signing_key.fingerprint(keys.load_private_key(private))


def _listed(text: str) -> list:
    return [signing_key.fingerprint(entry.key) for entry in keys.load_public_keys(text)]


def _marker(old: str, new: str, stage: str, **extra) -> str:
    return json.dumps(dict({"stage": stage, "old": _fp(old), "new": _fp(new), "old_public_key": _public(old),
                            "new_public_key": _public(new), "started": "2030-01-01T00:00:00Z"}, **extra))


def test_no_rotation_and_no_pending_key_generates_one(old):
    plan = plan_rotation(_public(old), None, old)
    assert (plan.stage, plan.action, plan.old, plan.new) == ("idle", "generate", _fp(old), None)


def test_a_pending_key_is_published_beside_the_old_and_rolled_back_without_it(old, new):
    plan = plan_rotation(_public(old), None, old, new, host="prod")
    assert (plan.action, plan.marker["stage"], plan.marker["by"]) == ("publish", "publishing", "prod")
    assert _listed(plan.publish_keys) == [_fp(old), _fp(new)]
    assert _listed(plan.rollback_keys) == [_fp(old)]
    assert "PRIVATE" not in json.dumps(plan.as_dict())


def test_an_unfinished_publish_is_done_again_and_its_rollback_drops_only_the_new_key(old, new):
    listed = ",".join([_public(old), _public(new)])
    plan = plan_rotation(listed, _marker(old, new, "publishing"), old, new)
    assert plan.action == "publish" and _listed(plan.publish_keys) == [_fp(old), _fp(new)]
    assert _listed(plan.rollback_keys) == [_fp(old)]


@pytest.mark.parametrize("stage", ["published", "switching"])
def test_a_published_key_is_switched_to(old, new, stage):
    listed = ",".join([_public(old), _public(new)])
    plan = plan_rotation(listed, _marker(old, new, stage), old, new)
    assert (plan.action, plan.promote) == ("switch", True)


def test_a_switch_stopped_after_the_store_changed_is_finished_without_promoting_again(old, new):
    listed = ",".join([_public(old), _public(new)])
    plan = plan_rotation(listed, _marker(old, new, "switching"), new, None, old)
    assert (plan.action, plan.promote) == ("switch", False)


def test_the_old_key_waits_for_the_grace_period_then_is_retired(old, new):
    listed = ",".join([_public(old), _public(new)])
    marker = _marker(old, new, "switched", switched="2030-01-01T00:00:00Z")
    early = plan_rotation(listed, marker, new, None, old, grace_period="24h", now="2030-01-01T23:59:00Z")
    assert (early.action, early.retire_due, early.retire_in) == ("wait", "2030-01-02T00:00:00Z", 60)
    assert "until 2030-01-02T00:00:00Z" in early.summary and early.retire_keys is None
    due = plan_rotation(listed, marker, new, None, old, grace_period="24h", now="2030-01-02T00:00:00Z")
    assert due.action == "retire" and _listed(due.retire_keys) == [_fp(new)]
    assert _listed(due.rollback_keys) == [_fp(old), _fp(new)]


def test_an_unfinished_retirement_is_done_again_and_can_put_the_old_key_back(old, new):
    plan = plan_rotation(_public(new), _marker(old, new, "retiring", switched="2030-01-01T00:00:00Z"), new)
    assert plan.action == "retire" and _listed(plan.retire_keys) == [_fp(new)]
    assert _listed(plan.rollback_keys) == [_fp(old), _fp(new)]


def test_a_store_that_does_not_belong_to_the_cluster_is_refused(old, new):
    with pytest.raises(SigningKeyRotationError, match="not in the cluster's JWT_PUBLIC_KEY"):
        plan_rotation(_public(new), None, old)


def test_a_lost_new_key_is_refused(old, new):
    listed = ",".join([_public(old), _public(new)])
    with pytest.raises(SigningKeyRotationError, match="no longer holds"):
        plan_rotation(listed, _marker(old, new, "published"), old, None)


def test_a_switched_store_whose_key_is_not_the_new_one_cannot_retire(old, new):
    listed = ",".join([_public(old), _public(new)])
    with pytest.raises(SigningKeyRotationError, match="cannot be retired"):
        plan_rotation(listed, _marker(old, new, "switched", switched="2030-01-01T00:00:00Z"), old, new)


def test_a_new_key_removed_from_the_list_stops_the_switch(old, new):
    with pytest.raises(SigningKeyRotationError, match="missing from JWT_PUBLIC_KEY"):
        plan_rotation(_public(old), _marker(old, new, "published"), old, new)


@pytest.mark.parametrize("marker", ["not json", "[]", '{"stage": "done"}', '{"stage": "published", "old": 1}'])
def test_a_foreign_annotation_is_one_line(old, marker):
    with pytest.raises(SigningKeyRotationError) as caught:
        plan_rotation(_public(old), marker, old)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_an_unusable_store_key_names_which_one_without_key_text(old):
    with pytest.raises(KeyLoadError, match="^the pending signing key of the key store cannot be used"):
        plan_rotation(_public(old), None, old, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


@pytest.mark.parametrize("algorithm,expected", [("rsa512", "RSA 3072"), ("ES256", "EC P-256"), ("EdDSA", "Ed25519")])
def test_generated_keys_fit_their_algorithm(algorithm, expected):
    key = keys.generate_private_key(algorithm, 3072)
    assert keys.describe_key(key) == expected
    assert keys.key_fits(keys.normalize_algorithm(algorithm), key)
    assert keys.load_private_key(keys.private_key_pem(key))


@pytest.mark.parametrize("size", [1024, True, 100000])
def test_weak_or_absurd_rsa_sizes_are_refused(size):
    with pytest.raises(KeyLoadError, match="give a size from 2048"):
        keys.generate_private_key("RS256", size)
