"""The client's rules without a server: where it asks, when it asks again, what stands in when
asking fails, and what it accepts as a token file. The server exchange is replaced by a stub
that writes a real token file (or fails as a server would)."""
from __future__ import annotations

import os
import pickle
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okera_auth.client import token as token_module
from okera_auth.client.cache import TokenCache
from okera_auth.client.errors import (
    ClientSettingsError, ServerAnswerError, ServerUnreachableError, TokenFileError,
)
from okera_auth.client.token import (
    TokenClient, TokenFunc, forget_tokens, parse_min_valid, read_token_file, token_func,
)
from okera_auth.client.transport import ServerAddress, parse_url, resolve_server
from okera_auth.module_utils.errors import ClaimsError
from okera_auth.module_utils.tokens import Signer

SERVER = ServerAddress("127.0.0.1", 5001)


class StubServer:
    """Stands in for ask_for_token_file: writes a token file per request, or raises ``failure``."""

    def __init__(self, directory, signer: Signer) -> None:
        self.directory = directory
        self.signer = signer
        self.requests = 0
        self.ttl = 3600
        self.failure = None
        self.delay = 0.0

    def __call__(self, server, user, timeout):
        self.requests += 1
        time.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        now = int(time.time())
        path = self.directory / ("%s.%d.token" % (user, time.time_ns()))
        path.write_text(self.signer.sign({"sub": user, "iat": now, "exp": now + self.ttl,
                                          "n": self.requests}))
        return str(path)


@pytest.fixture(autouse=True)
def fresh_shared_memory():
    """get_token() and token_func() remember tokens for the whole process."""
    forget_tokens()
    yield
    forget_tokens()


@pytest.fixture
def signer(rsa_private_key) -> Signer:
    return Signer(rsa_private_key, "RS512")


@pytest.fixture
def stub_server(monkeypatch, tmp_path, signer) -> StubServer:
    stub = StubServer(tmp_path, signer)
    monkeypatch.setattr(token_module, "ask_for_token_file", stub)
    return stub


def _expiring(signer, user="janedoe", expires_in=3600) -> str:
    now = int(time.time())
    return signer.sign({"sub": user, "iat": now, "exp": now + expires_in})


# Where the client asks


def test_arguments_win_over_the_environment():
    environ = {"OKERA_AUTHSERVER_URL": "http://127.0.0.1:7000",
               "OKERA_AUTHSERVER_UNIX_SOCKET": "/run/okera/authserver.sock"}
    assert resolve_server("http://127.0.0.1:6000", None, environ) == ServerAddress(
        "127.0.0.1", 6000)
    assert resolve_server(None, "/tmp/s", environ) == ServerAddress(unix_socket="/tmp/s")
    assert resolve_server(None, None, environ) == ServerAddress(
        unix_socket="/run/okera/authserver.sock")
    assert resolve_server(None, None, {"OKERA_AUTHSERVER_URL": "http://localhost:7000"}) == \
        ServerAddress("localhost", 7000)
    assert resolve_server(None, None, {}) == ServerAddress("127.0.0.1", 5001)


def test_url_credentials_are_ignored_as_okera_does():
    assert parse_url("http://foo:bar@localhost:5001/") == ServerAddress("localhost", 5001)
    assert parse_url("http://[::1]:5001").label == "http://[::1]:5001"


@pytest.mark.parametrize("url", ["https://127.0.0.1:5001", "127.0.0.1:5001", "http://:5001",
                                 "http://127.0.0.1:5001/janedoe", "http://127.0.0.1:99999"])
def test_unusable_url_is_a_settings_error(url):
    with pytest.raises(ClientSettingsError):
        parse_url(url)


def test_url_and_socket_together_are_refused():
    with pytest.raises(ClientSettingsError, match="not both"):
        resolve_server("http://127.0.0.1:5001", "/tmp/s", {})


def test_min_valid_may_be_zero_or_a_duration():
    assert [parse_min_valid(value) for value in (0, "0", "0s", "5m", "1h30m", 90)] == [
        0, 0, 0, 300, 5400, 90]
    with pytest.raises(ClaimsError):
        parse_min_valid("soon")


# When it asks again and what stands in


def test_remembered_token_is_reused_while_it_has_more_than_min_valid_left(stub_server):
    client = TokenClient(SERVER)
    first = client.get_token("janedoe")
    assert client.get_token("janedoe") == first and stub_server.requests == 1
    assert client.get_token("janedoe", min_valid="2h") != first and stub_server.requests == 2


def test_transient_failure_gives_the_last_good_token(stub_server):
    client = TokenClient(SERVER)
    first = client.get_token("janedoe")
    for failure in (ServerUnreachableError("down"), ServerAnswerError("stopping", 503),
                    TokenFileError("gone", gone=True)):
        stub_server.failure = failure
        assert client.get_token("janedoe", min_valid="2h") == first


def test_refusal_is_never_hidden_by_a_remembered_token(stub_server):
    client = TokenClient(SERVER)
    client.get_token("janedoe")
    for failure in (ServerAnswerError("bad user name", 400), ServerAnswerError("no", 403),
                    TokenFileError("permission denied")):
        stub_server.failure = failure
        with pytest.raises(type(failure)):
            client.get_token("janedoe", min_valid="2h")


def test_expired_last_good_token_does_not_stand_in(stub_server):
    stub_server.ttl = 2  # read with at least a second left (an exp within the second counts as passed)
    client = TokenClient(SERVER)
    client.get_token("janedoe")
    time.sleep(2.05)
    stub_server.failure = ServerUnreachableError("down")
    with pytest.raises(ServerUnreachableError):
        client.get_token("janedoe")


def test_home_token_stands_in_for_the_current_user_when_the_server_is_unreachable(
        stub_server, tmp_path, signer, monkeypatch):
    monkeypatch.setenv("LOGNAME", "janedoe")  # getpass.getuser() reads it first
    home_token = tmp_path / "home-token"
    home_token.write_text(_expiring(signer))
    client = TokenClient(SERVER, fallback_file=str(home_token))
    stub_server.failure = ServerUnreachableError("down")
    assert client.get_token() == home_token.read_text()
    with pytest.raises(ServerUnreachableError):
        client.get_token("bob")
    stub_server.failure = ServerAnswerError("stopping", 503)  # reachable: not a stand-in case
    with pytest.raises(ServerAnswerError):
        client.get_token("janedoe")


def test_home_token_path_from_a_hostile_home_is_named_printably(stub_server, tmp_path, signer, monkeypatch):
    monkeypatch.setenv("LOGNAME", "janedoe")
    home_token = tmp_path / "\x1b]0;pwned\x07token"
    home_token.write_text(_expiring(signer, expires_in=-60))
    stub_server.failure = ServerUnreachableError("down")
    with pytest.raises(ServerUnreachableError, match="holds no token that has not expired") as raised:
        TokenClient(SERVER, fallback_file=str(home_token)).get_token()
    assert str(raised.value).isprintable()


def test_disk_cache_spares_a_new_process_the_request(stub_server, tmp_path):
    cache = TokenCache(str(tmp_path / "cache"))
    first = TokenClient(SERVER, cache=cache).get_token("janedoe")
    assert TokenClient(SERVER, cache=cache).get_token("janedoe") == first
    assert stub_server.requests == 1


def test_callers_waiting_for_a_request_share_its_outcome(stub_server):
    stub_server.delay = 0.2
    client = TokenClient(SERVER)
    tokens = []
    threads = [threading.Thread(target=lambda: tokens.append(
        client.get_token("janedoe", min_valid="2h"))) for _number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 8 and len(set(tokens)) <= 2
    assert stub_server.requests <= 2  # the first request, and at most one by a late arrival


def test_token_func_is_a_picklable_zero_argument_callable(stub_server):
    func = token_func("janedoe", url="http://127.0.0.1:5001", min_valid="1m")
    assert isinstance(func, TokenFunc) and func.min_valid == 60
    copy = pickle.loads(pickle.dumps(func))
    assert copy == func and copy() == func()


# What it accepts as a token file


def test_token_file_must_hold_a_jwt_for_the_user(tmp_path, signer):
    path = tmp_path / "janedoe.1.token"
    path.write_text(_expiring(signer, "bob"))
    with pytest.raises(TokenFileError, match="is for 'bob', not 'janedoe'"):
        read_token_file(str(path), "janedoe")
    path.write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
    with pytest.raises(TokenFileError, match="does not hold a JWT") as raised:
        read_token_file(str(path), "janedoe")
    assert "secret" not in str(raised.value)


def test_missing_token_file_is_transient_and_names_the_path(tmp_path):
    path = str(tmp_path / "janedoe.1.token")
    with pytest.raises(TokenFileError) as raised:
        read_token_file(path, "janedoe")
    assert raised.value.transient and path in str(raised.value)
    assert "--delete-after" in str(raised.value)


def test_token_file_that_is_a_link_or_not_a_file_is_refused(tmp_path, signer):
    target = tmp_path / "real"
    target.write_text(_expiring(signer))
    link = tmp_path / "janedoe.1.token"
    os.symlink(str(target), str(link))
    with pytest.raises(TokenFileError, match="symbolic link"):
        read_token_file(str(link), "janedoe")
    fifo = tmp_path / "janedoe.2.token"
    os.mkfifo(str(fifo))
    with pytest.raises(TokenFileError, match="not a regular file"):
        read_token_file(str(fifo), "janedoe")


def test_token_file_holding_an_expired_token_is_refused(tmp_path, signer):
    path = tmp_path / "janedoe.1.token"
    path.write_text(_expiring(signer, expires_in=-60))
    with pytest.raises(TokenFileError, match="has expired already"):
        read_token_file(str(path), "janedoe")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300), name=st.text(min_size=1, max_size=40))
def test_token_file_message_never_holds_what_the_file_holds_and_is_one_printable_line(tmp_path, content, name):
    """Whatever file a server names, the message names the file only (printably) and never
    quotes what is in it: it may be a secret of the caller's that a server pointed at."""
    path = tmp_path / "f"
    path.write_bytes(content)
    shown_name = str(tmp_path) + "/" + name.replace("/", "_").replace("\x00", "_")
    try:
        os.replace(str(path), shown_name)
    except OSError:  # a name the file system refuses (too long for its encoding)
        return
    with pytest.raises(TokenFileError) as raised:
        read_token_file(shown_name, "janedoe")
    message = str(raised.value)
    assert message.isprintable()
    for line in content.decode("ascii", "replace").split():
        if len(line) >= 8:
            assert line not in message
    os.unlink(shown_name)


# Hostile settings: a one-line ClientSettingsError, never another exception


@pytest.mark.parametrize("arguments, message", [
    ({"url": "http://" + "a" * 80 + ".example:5001"}, "no valid host name"),
    ({"url": "http://a..b:5001"}, "no valid host name"),
    ({"user": "jane\udcff"}, "not valid text"),
    ({"user": ""}, "is not a name"),
    ({"user": 5}, "is not a name"),
    ({"timeout": -1}, "not a number of seconds above 0"),
    ({"timeout": 0}, "not a number of seconds above 0"),
    ({"timeout": 1e20}, "not a number of seconds above 0"),
    ({"timeout": float("nan")}, "not a number of seconds above 0"),
    ({"timeout": float("inf")}, "not a number of seconds above 0"),
    ({"timeout": "5"}, "not a number of seconds above 0"),
    ({"timeout": True}, "not a number of seconds above 0"),
])
def test_hostile_settings_are_one_line_settings_errors(arguments, message):
    call = {"user": "janedoe", "url": "http://127.0.0.1:9", "timeout": 1.0}
    call.update(arguments)
    user = call.pop("user")
    for function in (token_func, token_module.get_token):
        with pytest.raises(ClientSettingsError, match=message) as raised:
            function(user, **call)
        assert str(raised.value).isprintable()


def test_current_user_from_a_badly_encoded_environment_is_a_settings_error(monkeypatch):
    monkeypatch.setenv("LOGNAME", os.fsdecode(b"jane\xff"))
    for variable in ("USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ClientSettingsError, match="not valid text"):
        token_module.current_user()


@pytest.mark.parametrize("flag, value", [("--timeout", "99999999999999999999d"), ("--timeout", "2d"),
                                         ("--timeout", "1e309s"), ("--min-valid", "soon"),
                                         ("--min-valid", "9" * 5000)])
def test_okera_token_with_a_duration_it_cannot_use_exits_2_in_one_line_naming_the_flag(capsys, flag, value):
    from okera_auth.client.cli import main

    assert main(["--no-cache", "--url", "http://127.0.0.1:9", flag, value]) == 2
    error = capsys.readouterr().err
    assert error.startswith("okera-token: %s: " % flag) and error.count("\n") == 1
