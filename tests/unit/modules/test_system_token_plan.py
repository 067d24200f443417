"""system_token_plan: the plan, the keys and algorithm to mint with, one-line failures, and no token in the result."""
from __future__ import annotations

import json

import pytest

from okera_auth.module_utils import keys, tokens


@pytest.fixture
def module():
    from ansible_collections.okera.auth.plugins.modules import system_token_plan
    return system_token_plan


@pytest.fixture
def token(rsa_private_key):
    spec = tokens.TokenSpec(subject="okera_system_user", issuer="prod", groups=["okera_admins"], ttl=2 * 86400)
    return tokens.mint(tokens.Signer(rsa_private_key), spec).token


def _without_invocation(result: dict) -> str:
    # The invocation echoes the options, with the no_log ones masked; the rest is the module's own.
    return json.dumps({name: value for name, value in result.items() if name != "invocation"})


def test_plans_each_key_and_returns_no_token(module, run_module, token, rsa_public_pem):
    result, failed = run_module(module, {
        "tokens": {"SYSTEM_TOKEN_0": token + "\n", "OTHER": token},
        "secret_keys": ["SYSTEM_TOKEN_0", "SYSTEM_TOKEN_1"],
        "public_key_content": [rsa_public_pem.decode()], "algorithm": "rsa512"})
    assert not failed and result["changed"] is False
    assert [entry["why"] for entry in result["plan"]] == ["expires within 7d", "missing"]
    assert result["rotate_keys"] == ["SYSTEM_TOKEN_0", "SYSTEM_TOKEN_1"]
    assert result["plan"][1]["keep_groups"] == ["okera_admins"]
    assert result["plan"][0]["summary"].endswith("(2.0 days left), expires within 7d: rotate")
    assert result["algorithm"] == "RS512"
    assert keys.load_public_keys(result["public_jwks"])[0].key.public_numbers() == \
        keys.load_public_keys(rsa_public_pem)[0].key.public_numbers()
    own = _without_invocation(result)
    assert token.split(".")[2] not in own and token.split(".")[1] not in own
    assert "********" not in own, "nothing had to be masked: the module returns no token"
    assert token not in json.dumps(result)


def test_keeps_fresh_tokens_unless_forced_and_in_check_mode_too(module, run_module, token, rsa_public_pem):
    args = {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
            "public_key_content": [rsa_public_pem.decode()], "rotate_before": "1d"}
    result = run_module(module, args, check_mode=True)[0]
    assert result["rotate_keys"] == [] and result["plan"][0]["why"] == "more than 1d left"
    result = run_module(module, dict(args, force=True))[0]
    assert result["rotate_keys"] == ["SYSTEM_TOKEN_0"] and result["plan"][0]["why"] == "forced"
    assert result["changed"] is False


def test_reads_the_key_and_algorithm_from_the_configuration(module, run_module, token, rsa_public_pem):
    result, failed = run_module(module, {
        "tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
        "config": {"JWT_PUBLIC_KEY": rsa_public_pem.decode(), "JWT_ALGORITHM": "RSA512"}})
    assert not failed and result["plan"][0]["valid"] and result["algorithm"] == "RS512"


@pytest.mark.parametrize("config, message", [
    (None, ("Secret okera/okera-config does not exist: set system_token_config_secret_name / "
            "system_token_config_public_key_key, or give the cluster's public key(s) in system_token_public_keys")),
    ({"JWT_ALGORITHM": "RS512"}, "Secret okera/okera-config has no key JWT_PUBLIC_KEY: set"),
])
def test_missing_public_key_fails_in_one_line(module, run_module, token, config, message):
    args = {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
            "config_name": "Secret okera/okera-config"}
    if config is not None:
        args["config"] = config
    result, failed = run_module(module, args)
    assert failed and result["msg"].startswith(message) and "\n" not in result["msg"]


@pytest.mark.parametrize("change, message", [
    ({"algorithm": "none"}, "refused"),
    ({"rotate_before": "soon"}, "duration 'soon' is not understood"),
    ({"public_key_content": ["garbage"]}, "no public key found"),
])
def test_bad_options_fail_in_one_line(module, run_module, token, rsa_public_pem, change, message):
    args = dict({"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
                 "public_key_content": [rsa_public_pem.decode()]}, **change)
    result, failed = run_module(module, args)
    assert failed and message in result["msg"] and "Traceback" not in json.dumps(result)
    assert token.split(".")[2] not in json.dumps(result)


def test_hostile_tokens_are_planned_not_failed(module, run_module, rsa_public_pem, rsa_private_key):
    wrong_exp = tokens.Signer(rsa_private_key).sign({"sub": "s", "exp": "9999999999"})
    hostile = {"T0": "garbage", "T1": "Z" * 100_000, "T2": wrong_exp, "T3": "eyJ.e30."}
    result, failed = run_module(module, {"tokens": hostile, "secret_keys": sorted(hostile),
                                         "public_key_content": [rsa_public_pem.decode()]})
    assert not failed and result["rotate_keys"] == sorted(hostile)
    assert not any(entry["valid"] for entry in result["plan"])
    assert wrong_exp.split(".")[2] not in _without_invocation(result)


def test_public_keys_are_returned_as_a_public_jwks_only(module, run_module, token, rsa_private_key):
    jwk = dict(keys.public_jwk(rsa_private_key.public_key()), d="private-part")
    result = run_module(module, {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
                                 "public_key_content": [json.dumps(jwk)]})[0]
    assert result["plan"][0]["valid"]
    assert json.loads(result["public_jwks"]) == {"keys": [keys.public_jwk(rsa_private_key.public_key())]}
    assert "private-part" not in json.dumps(result)


def _private_pem_and_lines(private_key) -> tuple:
    pem = keys.private_key_pem(private_key)
    return pem, [line for line in pem.splitlines() if "-----" not in line]


def test_a_private_key_given_as_public_key_never_appears_in_the_output(module, run_module, token, rsa_private_key,
                                                                       rsa_public_pem):
    pem, lines = _private_pem_and_lines(rsa_private_key)
    for content in ([pem], [rsa_public_pem.decode(), pem], [rsa_public_pem.decode() + "," + pem]):
        result, failed = run_module(module, {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
                                             "public_key_content": content})
        shown = json.dumps(result)
        assert failed and "private key" in result["msg"], result
        assert not any(line in shown for line in lines), "a line of the private key is in the output"


def test_the_returned_keys_verify_a_token_of_the_rotation(module, run_module, token, rsa_public_pem, rsa_key_pem):
    from ansible_collections.okera.auth.plugins.modules import jwt_token, jwt_token_info

    plan = run_module(module, {"tokens": {"SYSTEM_TOKEN_0": token}, "secret_keys": ["SYSTEM_TOKEN_0"],
                               "public_key_content": [rsa_public_pem.decode()]})[0]
    assert "********" not in plan["public_jwks"] and "VALUE_SPECIFIED" not in plan["public_jwks"]
    # As roles/system_token/tasks/rotate.yml (mint and verify) and s3_write.yml (verify) pass them.
    minted, failed = run_module(jwt_token, {"private_key_content": rsa_key_pem.decode(), "algorithm": plan["algorithm"],
                                            "subject": "okera_system_user", "ttl": "1d", "return_content": True,
                                            "verify_public_key_content": [plan["public_jwks"]]})
    assert not failed and minted["valid"] is True, minted
    verified, failed = run_module(jwt_token_info, {"token": token, "public_key_content": [plan["public_jwks"]],
                                                   "algorithms": [plan["algorithm"]], "subject": "okera_system_user"})
    assert not failed and verified["valid"] is True, verified
