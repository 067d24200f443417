"""User names: whatever a client sends, no file is ever written outside the token directory."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authserver_harness import Daemon, raw_exchange
from okera_auth.authserver_issuer import (
    MAX_USER_LENGTH, ClaimRules, TokenIssuer, UserNameError, decode_user_name, validate_user_name,
)
from okera_auth.tokens import Signer

# Characters that matter for paths, plus everything else hypothesis likes to try.
TRICKY = st.sampled_from(["/", "\\", ".", "..", "\x00", "%", "%2e", "%2f", "%00", "%25", "~",
                          "-", "@", "_", " ", "\n", "é", "%c3%a9", "a", "Z", "9"])
PATHS = st.one_of(st.text(max_size=140), st.lists(TRICKY, max_size=30).map("".join))


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


@pytest.fixture(scope="module")
def shared_daemon(package_path, pem_key, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("names")
    daemon = Daemon(package_path, workdir, pem_key, ["--disable-delete"])
    yield daemon
    daemon.kill()


@given(st.one_of(PATHS, st.binary(max_size=60).map(lambda raw: raw.decode("latin-1"))))
@settings(max_examples=250, deadline=None)
def test_over_http_any_path_answers_cleanly_and_writes_only_inside(shared_daemon, raw):
    daemon = shared_daemon
    target = "/" + quote(raw, safe="/%.@-_~") if raw.isprintable() else "/" + quote(raw, safe="")
    answer = raw_exchange(daemon.port, b"GET " + target.encode("ascii") + b" HTTP/1.1\r\n"
                          b"Host: x\r\nConnection: close\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    assert status in (200, 400, 404)
    if status == 200:
        path = Path(answer.split(b"\r\n\r\n", 1)[1].decode())
        assert path.parent == daemon.directory and path.exists()
    assert sorted(p.name for p in daemon.workdir.iterdir()) == ["daemon.err", "daemon.log", "tokens"]
    assert all(p.parent == daemon.directory for p in daemon.directory.rglob("*"))
