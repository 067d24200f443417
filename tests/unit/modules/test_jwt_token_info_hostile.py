"""jwt_token_info (and jwt_token) under hostile input: bounded output, no key text anywhere.

What a module returns is printed by Ansible, and with -vvv its arguments too: a huge token
must not come back, and no key, private or public, may appear in a result or a message.
"""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization

from okera_auth.module_utils import keys, tokens

FAR_FUTURE = 4_000_000_000
SECRET = "s3cr3t-k3y-m4t3r14l-DO-NOT-ECHO"


@pytest.fixture
def module():
    from ansible_collections.okera.auth.plugins.modules import jwt_token_info
    return jwt_token_info


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signed(private_key, payload_json: str) -> str:
    """A token whose payload is exactly ``payload_json``, truly signed with RS512."""
    signer = tokens.Signer(private_key)
    signing_input = _segment(json.dumps(signer.header).encode()) + "." + _segment(payload_json.encode())
    return signing_input + "." + _segment(signer.signature(signing_input.encode()))


def _pem_body_chunks(pem: bytes):
    """16-character pieces of a PEM's base64 body: none may appear in any output."""
    body = b"".join(pem.strip().splitlines()[1:-1]).decode()
    return [body[start:start + 16] for start in range(0, len(body) - 16, 16)]


def _assert_one_line_failure(result, failed):
    assert failed and result["msg"] and "\n" not in result["msg"]
    assert "Traceback" not in json.dumps(result) and "exception" not in result


def test_ten_mib_token_fails_in_one_line_and_is_not_echoed(module, run_module, rsa_private_key, rsa_public_pem):
    # Valid in every way but size: before the bound its claims came back in full.
    token = _signed(rsa_private_key, json.dumps({"sub": "a", "exp": FAR_FUTURE,
                                                 "pad": "p" * (10 * 1024 * 1024)}))
    for keys_given in ([], [rsa_public_pem.decode()]):
        result, failed = run_module(module, {"token": token, "public_key_content": keys_given})
        _assert_one_line_failure(result, failed)
        assert "characters long" in result["msg"] and len(json.dumps(result)) < 4096


def test_ten_mib_token_file_fails_in_one_line_and_is_not_echoed(module, run_module, tmp_path, rsa_private_key):
    path = tmp_path / "huge.token"
    path.write_text(_signed(rsa_private_key, json.dumps({"sub": "a", "exp": FAR_FUTURE,
                                                         "pad": "p" * (10 * 1024 * 1024)})) + "\n")
    result, failed = run_module(module, {"path": str(path)})
    _assert_one_line_failure(result, failed)
    assert len(json.dumps(result)) < 4096


def test_deeply_nested_claims_fail_in_one_line(module, run_module, rsa_private_key):
    token = _signed(rsa_private_key, '{"sub": "a", "c": %s}' % ("[" * 20_000 + "]" * 20_000))
    result, failed = run_module(module, {"token": token})
    _assert_one_line_failure(result, failed)
    assert "nests JSON deeper" in result["msg"]


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("literal", ["1e300", "-1e300", "NaN", "Infinity", "1" + "0" * 400,
                                     '"9999999999"', "true"],
                         ids=["1e300", "-1e300", "NaN", "Infinity", "10**400", "text", "true"])
def test_hostile_dates_are_invalid_with_reason_and_no_expiry(module, run_module, rsa_private_key, rsa_public_pem,
                                                             name, literal):
    claims = {"sub": "okera_system_user", "exp": FAR_FUTURE}
    token = _signed(rsa_private_key, json.dumps(claims)[:-1] + ', "%s": %s}' % (name, literal))
    result, failed = run_module(module, {"token": token, "public_key_content": [rsa_public_pem.decode()]})
    assert not failed and result["valid"] is False
    assert "'%s'" % name in result["reason"] and "\n" not in result["reason"]
    if name == "exp":
        assert result["expires_at"] is None and result["expires_in"] is None


def test_private_key_given_as_public_key_never_appears_in_the_output(module, run_module, rsa_key_pem):
    token = tokens.mint(tokens.Signer(keys.load_private_key(rsa_key_pem)),
                        tokens.TokenSpec(subject="a")).token
    result, failed = run_module(module, {"token": token, "public_key_content": [rsa_key_pem.decode()]})
    _assert_one_line_failure(result, failed)
    assert "private key" in result["msg"]
    output = json.dumps(result)  # invocation.module_args included: what -vvv would print
    assert not any(chunk in output for chunk in _pem_body_chunks(rsa_key_pem))


@pytest.mark.parametrize("jwk", [
    {"kty": "oct", "k": SECRET},
    {"keys": [{"kty": "oct", "k": base64.urlsafe_b64encode(SECRET.encode()).decode()}]},
    {"k": SECRET},
    {"kty": "RSA", "n": SECRET + "AA", "e": "AQAB"},
], ids=["oct", "oct-in-jwks", "no-kty", "bad-n"])
def test_refused_jwk_never_appears_in_the_output(module, run_module, rsa_private_key, jwk):
    token = tokens.mint(tokens.Signer(rsa_private_key), tokens.TokenSpec(subject="a")).token
    result, failed = run_module(module, {"token": token, "public_key_content": [json.dumps(jwk)]})
    _assert_one_line_failure(result, failed)
    output = json.dumps(result)
    assert SECRET not in output and base64.urlsafe_b64encode(SECRET.encode()).decode() not in output


def test_jwt_token_never_shows_private_key_or_passphrase(run_module, rsa_private_key, tmp_path):
    from ansible_collections.okera.auth.plugins.modules import jwt_token
    passphrase = "correct-horse-" + SECRET
    encrypted = rsa_private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()))
    for given in (passphrase, "wrong-" + SECRET):
        result, _failed = run_module(jwt_token, {"private_key_content": encrypted.decode(),
                                                 "private_key_passphrase": given, "subject": "a",
                                                 "path": str(tmp_path / "t.token")}, diff=True)
        output = json.dumps(result)
        assert SECRET not in output and "\n" not in result.get("msg", "")
        assert not any(chunk in output for chunk in _pem_body_chunks(encrypted))
