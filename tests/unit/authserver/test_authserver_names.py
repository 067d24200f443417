"""User names: whatever a client sends, no file is ever written outside the token directory."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from okera_auth.authserver.issuer import (
    MAX_USER_LENGTH, ClaimRules, TokenIssuer, UserNameError, decode_user_name, validate_user_name,
)
from okera_auth.module_utils.tokens import Signer
from user_name_paths import PATHS


@pytest.mark.parametrize("name", ["janedoe", "jane.doe", "jane_doe", "jane-doe", "j@x.com",
                                  "okera_system_user", "_svc", "@team", "A9", "a" * MAX_USER_LENGTH])
def test_good_names_pass(name):
    assert validate_user_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", ".x", "-x", "a/b", "a\\b", "a..b", "a\x00",
                                  "a b", "é", "a" * (MAX_USER_LENGTH + 1), "a\n"])
def test_bad_names_fail(name):
    with pytest.raises(UserNameError):
        validate_user_name(name)


def test_percent_decoding_happens_once():
    assert decode_user_name("jane%2Edoe") == "jane.doe"
    with pytest.raises(UserNameError):
        decode_user_name("%252e%252e")  # would be '..' only if decoded twice


@given(PATHS)
@settings(max_examples=600, deadline=None)
def test_a_decoded_name_always_names_a_file_inside_the_directory(raw):
    try:
        name = decode_user_name(raw)
    except UserNameError:
        return
    directory = "/srv/tokens"
    path = os.path.normpath(os.path.join(directory, "%s.1.token" % name))
    assert os.path.dirname(path) == directory
    assert "/" not in name and "\x00" not in name and ".." not in name
    assert not name.startswith((".", "-")) and 0 < len(name) <= MAX_USER_LENGTH


@given(PATHS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_issued_files_stay_in_the_directory(tmp_path, rsa_private_key, raw):
    directory = tmp_path / "tokens"
    directory.mkdir(exist_ok=True)
    issuer = TokenIssuer(str(directory), Signer(rsa_private_key), ClaimRules(ttl=60))
    try:
        issued = issuer.issue(decode_user_name(raw), 1)
    except UserNameError:
        return
    assert Path(issued.path).resolve().parent == directory.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens"]
    os.unlink(issued.path)
