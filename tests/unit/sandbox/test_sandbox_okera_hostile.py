"""The simulated Okera service under hostile tokens and keys: "not valid, because", never a crash.

The start check runs on the sandbox's simulation thread and the token report in the CLI; an
exception from either would stop the cluster's background work or the command, so any token
or key, however hostile, must come back as a verdict with its reason.
"""
from __future__ import annotations

import base64
import json

import pytest

from okera_auth.module_utils import keys, tokens
from okera_auth.sandbox.okera import SYSTEM_TOKEN_KEY, okera_start_check, seed_cluster, token_report
from okera_auth.sandbox.store import Store

FAR_FUTURE = 4_000_000_000
SECRET = "s3cr3t-k3y-m4t3r14l-DO-NOT-ECHO"


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signed(private_key, payload_json: str) -> str:
    """A token whose payload is exactly ``payload_json``, truly signed with RS512."""
    signer = tokens.Signer(private_key, "RS512")
    signing_input = _segment(json.dumps(signer.header).encode()) + "." + _segment(payload_json.encode())
    return signing_input + "." + _segment(signer.signature(signing_input.encode()))


def _claims_with(name: str, literal: str) -> str:
    return '{"sub": "okera_system_user", "exp": %d, "%s": %s}' % (FAR_FUTURE, name, literal)


HOSTILE_PAYLOADS = {
    "exp-1e300": _claims_with("exp", "1e300"),
    "exp--1e300": _claims_with("exp", "-1e300"),
    "exp-NaN": _claims_with("exp", "NaN"),
    "exp-Infinity": _claims_with("exp", "Infinity"),
    "exp-10**400": _claims_with("exp", "1" + "0" * 400),
    "exp-text": _claims_with("exp", '"9999999999"'),
    "exp-true": _claims_with("exp", "true"),
    "nbf-1e300": _claims_with("nbf", "1e300"),
    "iat-NaN": _claims_with("iat", "NaN"),
    "iat-text": _claims_with("iat", '"1"'),
    "nested-20k": _claims_with("c", "[" * 20_000 + "]" * 20_000),
    "nested-100k": _claims_with("c", "[" * 100_000 + "]" * 100_000),
    "10MiB": _claims_with("pad", '"%s"' % ("p" * (10 * 1024 * 1024))),
}


def _environment(token: str, public_keys: str) -> dict:
    return {SYSTEM_TOKEN_KEY: token, "JWT_PUBLIC_KEY": public_keys, "JWT_ALGORITHM": "RSA512"}


def _cluster(token: str, public_keys: str) -> Store:
    store = Store()
    seed_cluster(store, "default", token, [public_keys])
    return store


@pytest.mark.parametrize("case", sorted(HOSTILE_PAYLOADS))
def test_hostile_token_does_not_start_the_service_and_says_why(rsa_private_key, rsa_public_pem, case):
    hostile_token = _signed(rsa_private_key, HOSTILE_PAYLOADS[case])
    public = rsa_public_pem.decode()
    outcome = okera_start_check(_environment(hostile_token, public), "default",
                                _cluster(hostile_token, public))
    assert outcome.ready is False and outcome.expires_at is None
    assert outcome.message.startswith("the system token was rejected: ")
    assert "\n" not in outcome.message and len(outcome.message) < 1024


@pytest.mark.parametrize("case", sorted(HOSTILE_PAYLOADS))
def test_token_report_of_hostile_token_is_invalid_with_reason(rsa_private_key, rsa_public_pem, case):
    hostile_token = _signed(rsa_private_key, HOSTILE_PAYLOADS[case])
    report = token_report(_cluster(hostile_token, rsa_public_pem.decode()), "default")
    assert report["valid"] is False and report["reason"] and "\n" not in report["reason"]
    if case.startswith("exp-"):
        assert report["expires_at"] is None and report["expires_in"] is None
    assert len(json.dumps(report)) < 2048


def test_text_exp_is_not_reported_as_an_expiry(rsa_private_key, rsa_public_pem):
    token = _signed(rsa_private_key, _claims_with("exp", '"9999999999"'))
    report = token_report(_cluster(token, rsa_public_pem.decode()), "default")
    assert report["valid"] is False and "'exp'" in report["reason"]
    assert report["subject"] == "okera_system_user" and report["expires_at"] is None


@pytest.mark.parametrize("public_keys", [
    json.dumps({"kty": "oct", "k": SECRET}),
    json.dumps({"keys": [{"kty": "RSA", "n": SECRET + "AA", "e": "AQAB"}]}),
    json.dumps({"keys": {"kty": "oct", "k": SECRET}}),
    '{"keys": %s}' % ("[" * 100_000 + "]" * 100_000),
], ids=["oct", "bad-n", "keys-not-a-list", "nested"])
def test_hostile_cluster_key_is_a_reason_without_key_text(rsa_private_key, public_keys):
    token = tokens.mint(tokens.Signer(rsa_private_key), tokens.TokenSpec(subject=tokens.SYSTEM_USER)).token
    store = _cluster(token, public_keys)
    outcome = okera_start_check(_environment(token, public_keys), "default", store)
    report = token_report(store, "default")
    for verdict, reason in ((outcome.ready, outcome.message), (report["valid"], report["reason"])):
        assert verdict is False and reason and "\n" not in reason and SECRET not in reason


def test_good_token_still_starts_the_service(rsa_private_key, rsa_public_pem):
    token = tokens.mint(tokens.Signer(rsa_private_key), tokens.TokenSpec(subject=tokens.SYSTEM_USER)).token
    public = keys.public_key_pem(rsa_private_key.public_key())
    outcome = okera_start_check(_environment(token, public), "default", _cluster(token, public))
    assert outcome.ready and outcome.expires_at is not None
