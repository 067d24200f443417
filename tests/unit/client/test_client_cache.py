"""okera-token's cache, the ~/.okera/token rule and the decode output: files only, no server."""
from __future__ import annotations

import base64
import binascii
import os
import stat
import time

import pytest

from okera_auth.client.cache import (
    TokenCache, default_cache_directory, has_more_than, read_unexpired_token, seconds_left,
)
from okera_auth.client.cli import decode_report
from okera_auth.module_utils.errors import TokenFormatError
from okera_auth.module_utils.tokens import Signer

NOW = 1_900_000_000
SERVER = "http://127.0.0.1:5001"


@pytest.fixture
def signed(rsa_private_key):
    """signed(subject, expires_in, **claims) -> a token expiring ``expires_in`` after NOW."""
    signer = Signer(rsa_private_key, "RS512")

    def sign(subject: str = "janedoe", expires_in: int = 3600, **claims) -> str:
        return signer.sign(dict({"sub": subject, "iat": NOW, "exp": NOW + expires_in}, **claims))

    return sign


def test_seconds_left_reads_exp_without_a_key(signed):
    assert seconds_left(signed(expires_in=600), now=NOW) == 600
    assert has_more_than(signed(expires_in=600), 300, now=NOW)
    assert not has_more_than(signed(expires_in=600), 600, now=NOW)
    assert not has_more_than(signed(expires_in=-1), 0, now=NOW)


def test_token_without_exp_or_malformed_is_never_reused(rsa_private_key):
    no_exp = Signer(rsa_private_key, "RS512").sign({"sub": "janedoe"})
    assert seconds_left(no_exp, now=NOW) is None and not has_more_than(no_exp, 0, now=NOW)
    assert seconds_left("garbage", now=NOW) is None


def test_cache_file_is_0600_in_a_0700_directory(tmp_path, signed):
    cache = TokenCache(str(tmp_path / "okera-auth"))
    token = signed()
    assert cache.store(SERVER, "janedoe", token)
    path = cache.path_for(SERVER, "janedoe")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache.directory).st_mode) == 0o700
    assert cache.load(SERVER, "janedoe", now=NOW) == token


def test_cache_keeps_one_file_per_user_and_server(tmp_path, signed):
    cache = TokenCache(str(tmp_path))
    cache.store(SERVER, "janedoe", signed("janedoe"))
    assert cache.load("unix:/run/okera/authserver.sock", "janedoe", now=NOW) is None
    assert cache.load(SERVER, "bob", now=NOW) is None
    assert cache.path_for(SERVER, "janedoe") != cache.path_for("http://127.0.0.1:5002", "janedoe")


def test_cache_file_name_of_any_user_stays_in_the_directory(tmp_path):
    cache = TokenCache(str(tmp_path))
    for user in ("../x", "..", "a/b", "/etc/passwd", ""):
        assert os.path.dirname(cache.path_for(SERVER, user)) == str(tmp_path)
    assert len({cache.path_for(SERVER, user) for user in ("a/b", "a%2Fb", "a_b")}) == 3


def test_cache_ignores_expired_malformed_and_other_users_tokens(tmp_path, signed):
    cache = TokenCache(str(tmp_path))
    path = cache.path_for(SERVER, "janedoe")
    for content in (signed(expires_in=-5), "not a token", signed("bob")):
        with open(path, "w") as handle:
            handle.write(content)
        assert cache.load(SERVER, "janedoe", now=NOW) is None
    os.unlink(path)
    os.symlink(str(tmp_path / "elsewhere"), path)
    with open(tmp_path / "elsewhere", "w") as handle:
        handle.write(signed())
    assert cache.load(SERVER, "janedoe", now=NOW) is None  # a link is not ours to follow


def test_unwritable_cache_is_skipped(tmp_path, signed):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert TokenCache(str(blocker / "okera-auth")).store(SERVER, "janedoe", signed()) is False


def test_cache_directory_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    in_home = str(tmp_path / ".cache" / "okera-auth")
    assert default_cache_directory({"XDG_CACHE_HOME": "/var/cache/me"}) == (
        "/var/cache/me/okera-auth")
    assert default_cache_directory({}) == in_home
    assert default_cache_directory({"XDG_CACHE_HOME": "rel"}) == in_home  # XDG: relative is ignored


def test_okera_home_token_is_used_only_while_it_has_not_expired(tmp_path, signed):
    path = tmp_path / "token"
    assert read_unexpired_token(str(path), now=NOW) is None
    path.write_text(signed(expires_in=30) + "\n")
    assert read_unexpired_token(str(path), now=NOW) == signed(expires_in=30)
    path.write_text(signed(expires_in=0))
    assert read_unexpired_token(str(path), now=NOW) is None


def test_decode_report_shows_header_claims_and_expiry(signed):
    report = decode_report(signed(expires_in=90, groups=["analysts"]) + "\n", now=NOW)
    assert report["header"] == {"alg": "RS512", "typ": "JWT", "kid": report["header"]["kid"]}
    assert report["claims"] == {"sub": "janedoe", "iat": NOW, "exp": NOW + 90,
                                "groups": ["analysts"]}
    assert (report["expires_at"], report["expires_in"], report["expired"]) == (
        "2030-03-17T17:48:10Z", 90, False)
    assert "signature" not in str(report)


def test_decode_report_reads_payloads_whose_padding_was_dropped(signed):
    # JWTs drop base64 padding: the tutorial's `awk -F. '{print $2}' | base64 -d` fails on
    # two tokens in three; decoding with the padding put back works on all.
    unpadded = 0
    for length in range(3):  # payloads of 3n, 3n+1, 3n+2 bytes
        token = signed(pad="x" * length)
        payload = token.split(".")[1]
        if len(payload) % 4:
            unpadded += 1
            with pytest.raises(binascii.Error):
                base64.b64decode(payload, validate=True)
        assert decode_report(token, now=NOW)["claims"]["pad"] == "x" * length
    assert unpadded == 2


def test_decode_report_of_garbage_raises_a_one_line_reason():
    for garbage in ("", "abc", "a.b", "a.b.c", "eyJhbGciOiJub25lIn0.e30.!!"):
        with pytest.raises(TokenFormatError) as raised:
            decode_report(garbage, now=time.time())
        assert "\n" not in str(raised.value)


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o720, 0o702])
def test_cache_directory_others_may_write_in_is_neither_read_nor_written(tmp_path, signed, mode):
    directory = tmp_path / "okera-auth"
    cache = TokenCache(str(directory))
    assert cache.store(SERVER, "janedoe", signed())
    os.chmod(directory, mode)
    assert cache.load(SERVER, "janedoe", now=NOW) is None
    os.unlink(cache.path_for(SERVER, "janedoe"))
    assert cache.store(SERVER, "janedoe", signed()) is False and not os.listdir(directory)


def test_cache_directory_of_another_user_is_neither_read_nor_written(tmp_path, signed, monkeypatch):
    cache = TokenCache(str(tmp_path / "okera-auth"))
    assert cache.store(SERVER, "janedoe", signed())
    owner = os.stat(cache.directory).st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)  # as another user sees the directory
    assert cache.load(SERVER, "janedoe", now=NOW) is None
    assert cache.store(SERVER, "bob", signed("bob")) is False
    assert os.listdir(cache.directory) == [os.path.basename(cache.path_for(SERVER, "janedoe"))]
