"""signing_key_pair and signing_key_plan: keys made and kept, check mode, diff by fingerprint, one-line failures, no key text."""
from __future__ import annotations

import base64
import json
import stat

import pytest

from okera_auth.module_utils import keys


@pytest.fixture
def pair():
    from ansible_collections.okera.auth.plugins.modules import signing_key_pair
    return signing_key_pair


@pytest.fixture
def plan():
    from ansible_collections.okera.auth.plugins.modules import signing_key_plan
    return signing_key_plan


def test_a_key_is_made_0600_then_kept(pair, run_module, tmp_path):
    path = tmp_path / "jwt.pem.next"
    result, failed = run_module(pair, {"path": str(path), "algorithm": "rsa512"}, diff=True)
    assert not failed and result["changed"] and result["key_type"] == "RSA 2048"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "private_key" not in result and "PRIVATE" not in json.dumps(result)
    assert result["diff"] == {"before": {}, "after": {"fingerprint": result["fingerprint"]}}
    again, failed = run_module(pair, {"path": str(path)})
    assert not failed and not again["changed"] and again["fingerprint"] == result["fingerprint"]


def test_check_mode_writes_nothing(pair, run_module, tmp_path):
    path = tmp_path / "jwt.pem"
    result, failed = run_module(pair, {"path": str(path)}, check_mode=True)
    assert not failed and result["changed"] and not path.exists()


def test_content_is_returned_only_when_asked(pair, run_module):
    result, failed = run_module(pair, {"return_content": True, "algorithm": "ES256"})
    assert not failed and result["key_type"] == "EC P-256"
    assert keys.load_private_key(result["private_key"])


def test_a_file_that_is_no_key_is_one_line(pair, run_module, tmp_path):
    path = tmp_path / "jwt.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    result, failed = run_module(pair, {"path": str(path)})
    assert failed and result["msg"].startswith(str(path)) and "\n" not in result["msg"] and "not a key" not in result["msg"]


def test_a_weak_size_is_refused(pair, run_module):
    result, failed = run_module(pair, {"return_content": True, "size": 1024})
    assert failed and "2048" in result["msg"]


def test_the_plan_returns_no_private_key(plan, run_module, rsa_key_pem, rsa_public_pem):
    result, failed = run_module(plan, {"public_keys": rsa_public_pem.decode(), "current_key": rsa_key_pem.decode()})
    assert not failed and result["action"] == "generate" and result["changed"] is False
    own = json.dumps({name: value for name, value in result.items() if name != "invocation"})
    assert "PRIVATE" not in own


def test_the_plan_fails_in_one_line(plan, run_module, rsa_public_pem):
    result, failed = run_module(plan, {"public_keys": rsa_public_pem.decode()})
    assert failed and result["msg"].startswith("the key store holds no current signing key")


def test_a_private_key_given_as_public_keys_never_appears_in_the_output(plan, run_module, rsa_key_pem, rsa_private_key):
    pem = rsa_key_pem.decode()
    jwk = dict(keys.public_jwk(rsa_private_key.public_key()), d="private-member-value")
    for given in (pem, base64.b64encode(rsa_key_pem).decode(), json.dumps(jwk), json.dumps({"keys": [jwk]})):
        result, failed = run_module(plan, {"public_keys": given})
        shown = json.dumps(result)
        assert failed and result["msg"].startswith("public_keys holds a private key"), result
        assert "private-member-value" not in shown
        assert not any(line in shown for line in pem.splitlines() if "-----" not in line)
