"""The rotation's rules about whose groups a new token gets, the catalog admins, and where Okera keeps its keys."""
from __future__ import annotations

import base64
import time

import pytest

from okera_auth.module_utils import system_token, tokens
from okera_auth.module_utils.errors import KeyLoadError

DAY = 86400
ADMINS = ["okera_catalog_admins"]


@pytest.fixture
def cluster(rsa_public_pem) -> system_token.ClusterKeys:
    return system_token.cluster_keys([rsa_public_pem.decode()], "rsa512")


@pytest.fixture
def mint(rsa_private_key):
    """mint(ttl, key=rsa_private_key, now=None, **spec) -> token text."""

    def make(ttl: int, key=None, now=None, **spec) -> str:
        spec = dict({"subject": "okera_system_user", "issuer": "prod", "groups": list(ADMINS)}, **spec)
        signed = tokens.mint(tokens.Signer(key or rsa_private_key, "RS512"), tokens.TokenSpec(ttl=ttl, **spec),
                             now=None if now is None else int(now))
        return signed.token

    return make


def _plan(values: dict, cluster, **options):
    keys = list(options.pop("keys", values))
    return system_token.plan_rotation(values, keys, cluster, "7d", **options)


def test_an_expired_token_signed_by_the_cluster_lends_its_issuer_and_groups(mint, cluster):
    expired = mint(3600, now=time.time() - 2 * DAY, groups=["okera_catalog_admins", "ops"])
    plan = _plan({"SYSTEM_TOKEN_0": expired}, cluster)[0]
    assert plan.rotate and not plan.valid and plan.genuine and "expired" in plan.why
    assert (plan.keep_issuer, plan.keep_groups) == ("prod", ["okera_catalog_admins", "ops"])
    assert (plan.new_groups, plan.new_groups_from) == (["okera_catalog_admins", "ops"], "the current token")


def test_a_token_the_cluster_did_not_sign_lends_nothing(mint, cluster, other_rsa_private_key):
    planted = mint(30 * DAY, key=other_rsa_private_key, issuer="evil", groups=["planted"])
    plan = _plan({"SYSTEM_TOKEN_0": planted}, cluster)[0]
    assert plan.rotate and not plan.genuine
    assert plan.groups == ["planted"], "shown as it is"
    assert (plan.keep_issuer, plan.keep_groups, plan.new_groups) == (None, [], [])
    refusal = system_token.rotation_refusal([plan])
    assert refusal.startswith("SYSTEM_TOKEN_0: no current token verifies with the cluster's key(s)")
    assert "set system_token_groups" in refusal


def test_a_planted_token_under_one_key_takes_the_genuine_groups_of_another(mint, cluster, other_rsa_private_key):
    values = {"SYSTEM_TOKEN_0": mint(30 * DAY, key=other_rsa_private_key, groups=["planted"]),
              "SYSTEM_TOKEN_1": mint(30 * DAY, groups=["okera_catalog_admins"])}
    planted, genuine = _plan(values, cluster)
    assert planted.keep_groups == ["okera_catalog_admins"]
    assert planted.new_groups_from == "the token of SYSTEM_TOKEN_1" and not genuine.rotate


def test_without_a_genuine_token_the_catalog_admins_become_the_groups(mint, cluster, other_rsa_private_key):
    planted = mint(30 * DAY, key=other_rsa_private_key, groups=["planted"])
    plan = _plan({"SYSTEM_TOKEN_0": planted}, cluster, catalog_admins=["admins", "ops"])[0]
    assert (plan.new_groups, plan.new_groups_from) == (["admins", "ops"], "the catalog admins")
    assert system_token.rotation_refusal([plan], ["admins", "ops"], "CATALOG_ADMINS of Secret x") is None


def test_new_groups_without_a_catalog_admin_are_refused_before_anything_changes(mint, cluster):
    plan = _plan({"SYSTEM_TOKEN_0": mint(DAY)}, cluster, groups=["not_an_admin_group"], catalog_admins=ADMINS)
    refusal = system_token.rotation_refusal(plan, ADMINS, "CATALOG_ADMINS of Secret okera/okera-config")
    assert refusal == ("SYSTEM_TOKEN_0: the new token's groups (not_an_admin_group, from system_token_groups) include "
                       "none of the cluster's catalog admins (okera_catalog_admins, from CATALOG_ADMINS of Secret "
                       "okera/okera-config), so the cluster would refuse it: set system_token_groups to include one of "
                       "them")
    fine = _plan({"SYSTEM_TOKEN_0": mint(DAY)}, cluster, groups=["ops", "okera_catalog_admins"], catalog_admins=ADMINS)
    assert system_token.rotation_refusal(fine, ADMINS) is None


def test_a_kept_token_is_never_refused(mint, cluster):
    plan = _plan({"SYSTEM_TOKEN_0": mint(30 * DAY)}, cluster, groups=["not_an_admin_group"], catalog_admins=ADMINS)
    assert not plan[0].rotate and system_token.rotation_refusal(plan, ADMINS) is None


def test_a_current_token_without_a_catalog_admin_is_rotated(mint, cluster):
    plan = _plan({"SYSTEM_TOKEN_0": mint(30 * DAY, groups=["analysts"])}, cluster, catalog_admins=ADMINS)[0]
    assert plan.rotate and plan.catalog_admin is False
    assert plan.why == "its groups include none of the catalog admins (okera_catalog_admins)"
    # ... but its groups would be kept, so the rotation is refused until groups are given.
    assert "set system_token_groups" in system_token.rotation_refusal([plan], ADMINS)
    unknown = _plan({"SYSTEM_TOKEN_0": mint(30 * DAY, groups=["analysts"])}, cluster)[0]
    assert unknown.catalog_admin is None and not unknown.rotate


@pytest.mark.parametrize("config, given, expected", [
    ({"CATALOG_ADMINS": "okera_catalog_admins, ops ,"}, None,
     (["okera_catalog_admins", "ops"], "CATALOG_ADMINS of Secret okera/okera-config")),
    ({"CATALOG_ADMINS": "a"}, ["given"], (["given"], "system_token_catalog_admins")),
    ({"CATALOG_ADMINS": " , "}, None, (None, None)),
    ({}, None, (None, None)),
    (None, [], (None, None)),
])
def test_catalog_admins_come_from_the_variable_else_the_configuration(config, given, expected):
    assert system_token.catalog_admins_of(config, given, "Secret okera/okera-config") == expected


@pytest.mark.parametrize("value, shown", [
    ("/etc/okera/jwt.pub", "/etc/okera/jwt.pub"),
    ("s3://okera-keys/prod/jwt.pub", "s3://okera-keys/prod/jwt.pub"),
    ("s3://keys/new.pub, s3://keys/old.pub", "s3://keys/new.pub, s3://keys/old.pub"),
    ("file:///etc/okera/jwt.pub", "file:///etc/okera/jwt.pub"),
])
def test_a_key_setting_that_names_a_location_says_so_in_one_line(value, shown):
    with pytest.raises(KeyLoadError) as failed:
        system_token.cluster_keys(config={"JWT_PUBLIC_KEY": value}, config_name="Secret okera/okera-config")
    message = str(failed.value)
    assert message == ("Secret okera/okera-config JWT_PUBLIC_KEY names where Okera reads the key (%s), not the key "
                       "itself: give the key's PEM text in system_token_public_keys" % shown)
    assert "groups" not in message and "\n" not in message


def test_given_public_keys_that_are_paths_are_refused(rsa_public_pem):
    with pytest.raises(KeyLoadError) as failed:
        system_token.cluster_keys([rsa_public_pem.decode(), "~/keys/okera.pub"])
    assert str(failed.value).startswith("system_token_public_keys item 2 is where a key is (~/keys/okera.pub)")


def test_keys_themselves_are_not_mistaken_for_locations(rsa_public_pem):
    pem = rsa_public_pem.decode()
    for text in (pem, base64.b64encode(rsa_public_pem).decode(), '{"keys": []}', "ssh-rsa AAAAB3Nza"):
        assert system_token.key_location(text) is None, text
    assert len(system_token.cluster_keys(config={"JWT_PUBLIC_KEY": base64.b64encode(rsa_public_pem).decode()})
               .entries) == 1
