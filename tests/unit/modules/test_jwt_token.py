"""jwt_token: minting, idempotency, check mode, diff, file modes, and secrets kept out of output."""
from __future__ import annotations

import json
import os
import stat

import pytest

from okera_auth.module_utils import keys, tokens


@pytest.fixture
def module():
    from ansible_collections.okera.auth.plugins.modules import jwt_token
    return jwt_token


@pytest.fixture
def args(key_dir, tmp_path):
    return {"private_key_path": str(key_dir / "private.pem"), "subject": "okera_system_user",
            "issuer": "prod", "groups": ["okera_admins"], "ttl": "30d",
            "path": str(tmp_path / "system.token")}


def _verifies(path, rsa_private_key):
    entry = keys.PublicKeyEntry(rsa_private_key.public_key(), "")
    return tokens.verify(open(path).read(), [entry], ["RS512"]).valid


def test_mints_to_path_with_mode_0600_and_no_token_in_output(module, run_module, args, rsa_private_key):
    result, failed = run_module(module, args)
    assert not failed and result["changed"]
    assert stat.S_IMODE(os.stat(args["path"]).st_mode) == 0o600
    assert _verifies(args["path"], rsa_private_key)
    assert result["claims"]["groups"] == ["okera_admins"] and result["claims"]["iss"] == "prod"
    assert result["expires_in"] > 29 * 86400 and result["expires_at"].endswith("Z")
    assert "token" not in result
    assert open(args["path"]).read().strip() not in json.dumps(result)


def test_second_run_keeps_the_token(module, run_module, args):
    run_module(module, args)
    before = open(args["path"]).read()
    result = run_module(module, args)[0]
    assert not result["changed"] and result["reason"] is None
    assert open(args["path"]).read() == before


def test_force_renews(module, run_module, args):
    run_module(module, args)
    before = open(args["path"]).read()
    result = run_module(module, dict(args, force=True, jti=True))[0]
    assert result["changed"] and result["reason"] == "force is set"
    assert open(args["path"]).read() != before


def test_changed_groups_renew(module, run_module, args):
    run_module(module, args)
    result = run_module(module, dict(args, groups=["okera_admins", "ops"]))[0]
    assert result["changed"] and "groups" in result["reason"]


def test_check_mode_predicts_and_writes_nothing(module, run_module, args):
    result = run_module(module, args, check_mode=True)[0]
    assert result["changed"] and not os.path.exists(args["path"])
    run_module(module, args)
    result = run_module(module, args, check_mode=True)[0]
    assert not result["changed"]
    result = run_module(module, dict(args, renew_before="31d"), check_mode=True)[0]
    assert result["changed"] and "within renew_before" in result["reason"]


def test_diff_shows_claims_and_hashes_never_the_token(module, run_module, args):
    run_module(module, args)
    old_token = open(args["path"]).read().strip()
    result = run_module(module, dict(args, force=True), diff=True)[0]
    new_token = open(args["path"]).read().strip()
    diff = result["diff"]
    assert diff["before"]["claims"]["sub"] == "okera_system_user"
    assert diff["after"]["claims"]["exp"].endswith("Z") and len(diff["after"]["sha256"]) == 64
    text = json.dumps(result)
    assert old_token not in text and new_token not in text
    assert new_token.split(".")[2] not in text


def test_return_content_gives_the_token(module, run_module, key_dir, rsa_private_key):
    result, failed = run_module(module, {"private_key_path": str(key_dir / "private.pem"),
                                         "subject": "jane", "ttl": "1h", "return_content": True})
    assert not failed and result["changed"]
    entry = keys.PublicKeyEntry(rsa_private_key.public_key(), "")
    assert tokens.verify(result["token"], [entry], ["RS512"]).valid


def test_mode_and_content_key(module, run_module, rsa_key_pem, tmp_path):
    path = tmp_path / "t"
    result, failed = run_module(module, {"private_key_content": rsa_key_pem.decode(),
                                         "subject": "jane", "path": str(path), "mode": "0640",
                                         "algorithm": "rsa256"})
    assert not failed and stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert result["header"]["alg"] == "RS256"


def test_token_without_path_or_return_content_is_refused(module, run_module, key_dir):
    result, failed = run_module(module, {"private_key_path": str(key_dir / "private.pem"),
                                         "subject": "jane"})
    assert failed and "path" in result["msg"] and "return_content" in result["msg"]


@pytest.mark.parametrize("change, message", [
    ({"claims": {"sub": "root"}}, "reserved claim(s) sub"),
    ({"algorithm": "ES256"}, "ES256 needs an EC P-256 key"),
    ({"ttl": "forever"}, "duration 'forever' is not understood"),
    ({"ttl": "omit", "expires_at": "2001-01-01"}, "not in the future"),
    ({"expires_at": "2099-01-01"}, "parameters are mutually exclusive: ttl|expires_at"),
    ({"private_key_path": "/nonexistent/key.pem"}, "private key file /nonexistent/key.pem does not exist"),
])
def test_bad_input_is_one_clear_line(module, run_module, args, change, message):
    arguments = {name: value for name, value in dict(args, **change).items() if value != "omit"}
    result, failed = run_module(module, arguments)
    assert failed and message in result["msg"] and "\n" not in result["msg"]
    assert not os.path.exists(args["path"])


def test_key_and_passphrase_never_appear_in_failures(module, run_module, rsa_private_key, tmp_path):
    from cryptography.hazmat.primitives import serialization
    encrypted = rsa_private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse")).decode()
    result, failed = run_module(module, {"private_key_content": encrypted, "subject": "a",
                                         "private_key_passphrase": "wrong battery",
                                         "path": str(tmp_path / "t")})
    assert failed and "check the passphrase" in result["msg"]
    text = json.dumps(result)
    assert "wrong battery" not in text and encrypted.splitlines()[1] not in text
    garbled = encrypted.replace("\n", "\n\n", 3)[:300]
    result, failed = run_module(module, {"private_key_content": garbled, "subject": "a",
                                         "path": str(tmp_path / "t")})
    assert failed and garbled.splitlines()[2] not in json.dumps(result)


def test_existing_token_from_other_key_is_replaced(module, run_module, args, other_rsa_private_key,
                                                   rsa_private_key):
    stale = tokens.mint(tokens.Signer(other_rsa_private_key),
                        tokens.TokenSpec(subject="okera_system_user", groups=["okera_admins"],
                                         issuer="prod", ttl=30 * 86400)).token
    with open(args["path"], "w") as handle:
        handle.write(stale)
    result = run_module(module, args)[0]
    assert result["changed"] and "does not verify" in result["reason"]
    assert _verifies(args["path"], rsa_private_key)


def _jwks(*private_keys):
    return json.dumps({"keys": [dict(keys.public_jwk(key.public_key()),
                                     kid=keys.jwk_thumbprint(key.public_key()))
                                for key in private_keys]})


def test_verify_public_key_content_checks_the_new_token(module, run_module, key_dir, rsa_public_pem,
                                                        other_rsa_private_key):
    args = {"private_key_path": str(key_dir / "private.pem"), "subject": "okera_system_user",
            "algorithm": "rsa512", "return_content": True}
    other = keys.public_key_pem(other_rsa_private_key.public_key())
    result, failed = run_module(module, dict(args, verify_public_key_content=[rsa_public_pem.decode()]))
    assert not failed and result["valid"] is True and result["invalid_reason"] is None
    assert result["reason"] == "there is no token yet"
    result, failed = run_module(module, dict(args, verify_public_key_content=[other]))
    assert not failed and result["valid"] is False
    assert result["invalid_reason"] == "the signature does not verify with any of the 1 given key(s)"
    result, failed = run_module(module, dict(args, algorithm="RS256",
                                             verify_public_key_content=[rsa_public_pem.decode()]))
    assert not failed and result["valid"] is True and result["header"]["alg"] == "RS256"
    result = run_module(module, args)[0]
    assert "valid" not in result and "invalid_reason" not in result


def test_verify_takes_a_jwks_and_checks_a_kept_token(module, run_module, args, rsa_private_key,
                                                     other_rsa_private_key):
    run_module(module, args)
    jwks = _jwks(other_rsa_private_key, rsa_private_key)
    result, failed = run_module(module, dict(args, verify_public_key_content=[jwks]))
    assert not failed and not result["changed"] and result["valid"] is True
    result = run_module(module, dict(args, verify_public_key_content=[_jwks(other_rsa_private_key)]))[0]
    assert result["valid"] is False and "does not verify" in result["invalid_reason"]


def test_unloadable_verify_key_fails_in_one_line_before_writing(module, run_module, args, rsa_key_pem):
    private_pem = rsa_key_pem.decode()
    for bad in ("not a key at all", private_pem):
        result, failed = run_module(module, dict(args, verify_public_key_content=[bad]))
        assert failed and "\n" not in result["msg"] and result["msg"]
        assert bad.splitlines()[0] not in json.dumps(result)
        assert private_pem.splitlines()[1] not in json.dumps(result)
        assert not os.path.exists(args["path"])


def test_verify_output_holds_no_private_key_or_passphrase(module, run_module, rsa_private_key,
                                                          rsa_public_pem, tmp_path):
    from cryptography.hazmat.primitives import serialization
    encrypted = rsa_private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse")).decode()
    result, failed = run_module(module, {"private_key_content": encrypted, "subject": "a",
                                         "private_key_passphrase": "correct horse",
                                         "path": str(tmp_path / "t"),
                                         "verify_public_key_content": [rsa_public_pem.decode()]},
                                diff=True)
    assert not failed and result["valid"] is True
    text = json.dumps(result)
    assert "correct horse" not in text and encrypted.splitlines()[1] not in text
    assert open(tmp_path / "t").read().strip() not in text


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink"])
def test_the_key_file_is_never_replaced_by_the_token(module, run_module, key_dir, tmp_path, force, alias):
    key = tmp_path / "kcopy.pem"
    key.write_bytes((key_dir / "private.pem").read_bytes())
    target = {"same": key, "symlink": tmp_path / "link.pem", "hardlink": tmp_path / "hard.pem"}[alias]
    if alias == "symlink":
        target.symlink_to(key)
    elif alias == "hardlink":
        os.link(key, target)
    before = key.read_bytes()
    result, failed = run_module(module, {"private_key_path": str(key), "subject": "alice",
                                         "path": str(target), "force": force})
    assert failed and "is the same file as private_key_path" in result["msg"]
    assert "\n" not in result["msg"] and not result.get("changed")
    assert key.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted({key.name, target.name})


def test_a_file_that_is_not_a_token_is_kept_unless_forced(module, run_module, args):
    with open(args["path"], "w") as handle:
        handle.write("my notes\nsecond line\n")
    result, failed = run_module(module, args)
    assert failed and "is not a token" in result["msg"] and "force" in result["msg"]
    assert "my notes" not in json.dumps(result)
    assert open(args["path"]).read() == "my notes\nsecond line\n"
    result, failed = run_module(module, dict(args, force=True))
    assert not failed and result["changed"]
    tokens.decode_unverified(open(args["path"]).read().strip())
