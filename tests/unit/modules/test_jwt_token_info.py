"""jwt_token_info: decoding, verification verdicts, and clean failures on malformed input."""
from __future__ import annotations

import json

import pytest

from okera_auth.module_utils import keys, tokens


@pytest.fixture
def module():
    from ansible_collections.okera.auth.plugins.modules import jwt_token_info
    return jwt_token_info


@pytest.fixture
def token(rsa_private_key):
    spec = tokens.TokenSpec(subject="okera_system_user", issuer="prod", groups=["admins"])
    return tokens.mint(tokens.Signer(rsa_private_key), spec).token


def test_decodes_without_keys(module, run_module, token):
    result, failed = run_module(module, {"token": token})
    assert not failed and not result["changed"]
    assert result["claims"]["sub"] == "okera_system_user" and result["header"]["alg"] == "RS512"
    assert 86000 < result["expires_in"] <= 86400 and result["expired"] is False
    assert "valid" not in result


def test_verifies_with_public_key_file_and_reports_kid(module, run_module, token, key_dir,
                                                       rsa_private_key):
    result = run_module(module, {"token": token, "public_key_path": [str(key_dir / "public.pem")],
                                 "algorithms": ["rsa512"], "subject": "okera_system_user",
                                 "issuer": "prod"})[0]
    assert result["valid"] and result["reason"] is None
    assert result["verified_kid"] == keys.jwk_thumbprint(rsa_private_key.public_key())


def test_reads_token_from_path(module, run_module, token, tmp_path, rsa_public_pem):
    path = tmp_path / "t.token"
    path.write_text(token + "\n")
    result = run_module(module, {"path": str(path), "public_key_content": [rsa_public_pem.decode()]})[0]
    assert result["valid"]


def test_wrong_key_and_tampering_are_invalid_with_reason(module, run_module, token,
                                                         other_rsa_private_key, rsa_public_pem):
    other = keys.public_key_pem(other_rsa_private_key.public_key())
    result, failed = run_module(module, {"token": token, "public_key_content": [other]})
    assert not failed and result["valid"] is False and "does not verify" in result["reason"]
    header, payload, signature = token.split(".")
    claims = json.loads(tokens._decode_segment(payload, "payload"))
    claims["groups"] = ["everyone"]
    forged_payload = tokens._b64url(json.dumps(claims).encode()).decode()
    forged = ".".join([header, forged_payload, signature])
    result = run_module(module, {"token": forged, "public_key_content": [rsa_public_pem.decode()]})[0]
    assert result["valid"] is False


def test_expected_subject_mismatch(module, run_module, token, rsa_public_pem):
    result = run_module(module, {"token": token, "public_key_content": [rsa_public_pem.decode()],
                                 "subject": "someone_else"})[0]
    assert result["valid"] is False and "subject" in result["reason"]


@pytest.mark.parametrize("bad, message", [
    ("not-a-token", "three dot-separated parts"),
    ("a.b", "has 2"),
    ("eyJ.e30.", "header is not JSON"),
])
def test_malformed_token_fails_cleanly(module, run_module, bad, message):
    result, failed = run_module(module, {"token": bad})
    assert failed and message in result["msg"] and "Traceback" not in json.dumps(result)


def test_bad_algorithm_and_bad_key_fail_cleanly(module, run_module, token, rsa_public_pem):
    result, failed = run_module(module, {"token": token, "public_key_content": [rsa_public_pem.decode()],
                                         "algorithms": ["none"]})
    assert failed and "refused" in result["msg"]
    result, failed = run_module(module, {"token": token, "public_key_content": ["garbage"]})
    assert failed and "no public key found" in result["msg"]
    result, failed = run_module(module, {"path": "/nonexistent/token"})
    assert failed and "does not exist" in result["msg"]
