"""system_token_plan: the catalog admins, a refusal naming the variable, an unfinished rotation, key locations."""
from __future__ import annotations

import base64
import json

import pytest

from okera_auth.module_utils import tokens


@pytest.fixture
def module():
    from ansible_collections.okera.auth.plugins.modules import system_token_plan
    return system_token_plan


@pytest.fixture
def token(rsa_private_key):
    spec = tokens.TokenSpec(subject="okera_system_user", issuer="prod", groups=["okera_catalog_admins"], ttl=2 * 86400)
    return tokens.mint(tokens.Signer(rsa_private_key), spec).token


def _config(rsa_public_pem, **extra):
    return dict({"JWT_PUBLIC_KEY": rsa_public_pem.decode(), "JWT_ALGORITHM": "RSA512"}, **extra)


def test_catalog_admins_come_from_the_configuration_and_refuse_other_groups(module, run_module, token, rsa_public_pem):
    args = {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
            "config": _config(rsa_public_pem, CATALOG_ADMINS="okera_catalog_admins,ops"),
            "config_name": "Secret okera/okera-config"}
    result, failed = run_module(module, args)
    assert not failed and result["refusal"] is None and result["unfinished"] is None
    assert result["catalog_admins"] == ["okera_catalog_admins", "ops"]
    assert result["catalog_admins_from"] == "CATALOG_ADMINS of Secret okera/okera-config"
    entry = result["plan"][0]
    assert (entry["catalog_admin"], entry["genuine"], entry["new_groups"], entry["new_groups_from"]) == (
        True, True, ["okera_catalog_admins"], "the current token")

    result, failed = run_module(module, dict(args, groups=["not_an_admin_group"]))
    assert not failed and "include none of the cluster's catalog admins" in result["refusal"]
    result, failed = run_module(module, dict(args, groups=["not_an_admin_group"], catalog_admins=[]))
    assert not failed and result["refusal"] is None and result["catalog_admins"] is None


def test_an_unfinished_rotation_is_reported(module, run_module, token, rsa_public_pem):
    import hashlib

    marker = json.dumps({"started": "2026-12-02T10:00:00Z", "by": "prod",
                         "keys": {"SYSTEM_TOKEN_0": "sha256:" + hashlib.sha256(token.encode()).hexdigest()}})
    result, failed = run_module(module, {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
                                         "config": _config(rsa_public_pem), "unfinished_marker": marker})
    assert not failed and result["unfinished"]["same_tokens"] is True
    assert result["unfinished"]["secret_keys"] == ["SYSTEM_TOKEN_0"]


@pytest.mark.parametrize("setting", ["/etc/okera/jwt.pub", "s3://okera/keys/jwt.pub"])
def test_a_key_location_fails_in_one_line_naming_the_variable(module, run_module, token, setting):
    result, failed = run_module(module, {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
                                         "config": {"JWT_PUBLIC_KEY": setting},
                                         "config_name": "Secret okera/okera-config"})
    assert failed and result["msg"] == (
        "Secret okera/okera-config JWT_PUBLIC_KEY names where Okera reads the key (%s), not the key itself: "
        "give the key's PEM text in system_token_public_keys" % setting)


def test_base64_of_the_key_in_the_configuration_still_loads(module, run_module, token, rsa_public_pem):
    result, failed = run_module(module, {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
                                         "config": {"JWT_PUBLIC_KEY": base64.b64encode(rsa_public_pem).decode()}})
    assert not failed and result["plan"][0]["valid"]
