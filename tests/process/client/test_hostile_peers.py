"""The client and the example service against peers that misbehave: something answering in the
auth server's place that drips its answer, says nothing, answers garbage or names files it should
not, and a REST API that redirects or nests without end. Every answer comes over a real socket on
127.0.0.1, from a scripted server in this process."""
from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from typing import Callable, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopback_peer import LoopbackPeer
from okera_auth.client import ClientError, ServerUnreachableError
from okera_auth.client.transport import ServerAddress, ask_for_token_file
from okera_auth.examples.myservice import DatabaseLister, MyService, ServiceError, ServiceSettings

JWT = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJqYW5lZG9lIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
# A guard against a test hanging for good; no assertion is about time.
HANG_GUARD_SECONDS = 30


class ScriptedServer(LoopbackPeer):
    """Answers each request with ``script(connection)``."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.requests: List[bytes] = []
        super().__init__()

    @property
    def address(self) -> ServerAddress:
        return ServerAddress("127.0.0.1", self.port)

    def answer(self, connection: socket.socket, request: bytes) -> None:
        self.requests.append(request)
        self.script(connection)


@pytest.fixture
def scripted_server():
    servers: List[ScriptedServer] = []

    def start(script: Callable[[socket.socket], None]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _answer(data: bytes) -> Callable[[socket.socket], None]:
    return lambda connection: connection.sendall(data)


def _drip_headers(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    while True:
        connection.sendall(b"X-Wait: a\r\n")
        time.sleep(0.1)


def _drip_body(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 65000\r\n\r\n")
    while True:
        connection.sendall(b"/")
        time.sleep(0.1)


def _silence(connection: socket.socket) -> None:
    connection.recv(1)  # until the client hangs up


def _outcome(call: Callable[[], object]) -> object:
    """What ``call`` returned or raised, run in a thread so that a hang fails the test."""
    outcome: List[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:  # noqa: BLE001 - the test looks at what it is
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    assert outcome, "still waiting for the server after %ds" % HANG_GUARD_SECONDS
    return outcome[0]


@pytest.mark.parametrize("script", [_drip_headers, _drip_body, _silence],
                         ids=["headers-dripped", "body-dripped", "silent"])
def test_a_dripping_or_silent_server_holds_the_client_no_longer_than_its_timeout(scripted_server, script):
    server = scripted_server(script)
    error = _outcome(lambda: ask_for_token_file(server.address, "janedoe", 0.5))
    assert isinstance(error, ServerUnreachableError), error
    assert str(error) == "no answer from the auth server at %s within 0.5s" % server.url


def test_okera_token_given_a_dripping_server_fails_in_one_line(scripted_server, run_okera_token):
    server = scripted_server(_drip_headers)
    done = run_okera_token("--no-cache", "--timeout", "1s", "--url", server.url, timeout=HANG_GUARD_SECONDS)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "okera-token: no answer from the auth server at %s within 1s\n" % server.url


_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)
_HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff, exclude_characters="\x7f"), max_size=40)
_HTTP_ANSWERS = st.builds(
    lambda status, reason, content_type, body: (
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nConnection: close\r\n\r\n%s"
        % (status, reason.encode("latin-1"), content_type.encode("latin-1"), body.encode("utf-8"))),
    st.sampled_from([200, 201, 204, 302, 400, 403, 404, 500, 503, 999]),
    st.one_of(_HEADER_VALUE, st.just("\x1b[2J" + JWT)),
    _HEADER_VALUE,
    st.one_of(_TEXT, st.just("/" + JWT), st.just(JWT + "\nsecond line"), st.just("/tmp/\x1b[31mred.token"),
              st.builds(lambda path: "/" + path, _TEXT), st.just("[" * 5000)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=st.one_of(_HTTP_ANSWERS, st.binary(max_size=200)))
def test_any_answer_is_a_printable_path_or_one_printable_line_without_a_token(scripted_server, answer):
    server = scripted_server(_answer(answer))
    try:
        outcome = _outcome(lambda: ask_for_token_file(server.address, "janedoe", 5.0))
    finally:
        server.close()
    if isinstance(outcome, str):
        assert outcome.startswith("/") and outcome.isprintable()
        return
    assert isinstance(outcome, ClientError), repr(outcome)
    message = str(outcome)
    assert message.isprintable() and JWT not in message and "eyJ" not in message


def _redirect_to(target: str) -> Callable[[socket.socket], None]:
    return _answer(b"HTTP/1.1 302 Found\r\nLocation: %s/api/databases\r\nContent-Length: 0\r\n"
                   b"Connection: close\r\n\r\n" % target.encode())


def _json_answer(status: int, text: str) -> Callable[[socket.socket], None]:
    body = text.encode()
    return _answer(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   b"Connection: close\r\n\r\n%s" % (status, len(body), body))


def _lister(rest_url: str) -> DatabaseLister:
    return DatabaseLister(ServiceSettings(rest_url=rest_url, timeout=5.0),
                          token_source=lambda user, **_options: JWT)


def test_example_service_never_follows_a_redirect_with_the_token(scripted_server):
    elsewhere = scripted_server(_json_answer(200, '["stolen"]'))
    rest_api = scripted_server(_redirect_to(elsewhere.url))
    with pytest.raises(ServiceError, match="answered 302") as raised:
        _lister(rest_api.url).databases("janedoe")
    assert raised.value.status == 502 and JWT not in str(raised.value)
    assert len(rest_api.requests) == 1 and not elsewhere.requests


@pytest.mark.parametrize("status", [200, 500])
def test_example_service_answers_a_deeply_nested_document_with_502(scripted_server, status):
    rest_api = scripted_server(_json_answer(status, "[" * 3000 + "]" * 3000))
    with pytest.raises(ServiceError) as raised:
        _lister(rest_api.url).databases("janedoe")
    assert raised.value.status == 502
    json.dumps(str(raised.value))  # one plain message


def test_example_service_logs_a_hostile_user_name_on_its_own_lines(scripted_server, capsys):
    rest_api = scripted_server(_json_answer(200, '["default"]'))
    settings = ServiceSettings(port=0, rest_url=rest_api.url, timeout=5.0)
    service = MyService(settings, _lister(rest_api.url))
    threading.Thread(target=service.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", service.server_address[1], timeout=10)
        user = "jane\n2026/01/01 00:00:00 GET / admin 200\x1b[2J"
        connection.request("GET", "/", headers={
            "Authorization": "Basic " + base64.b64encode((user + ":pw").encode()).decode()})
        answer = connection.getresponse()
        assert (answer.status, json.loads(answer.read())) == (200, ["default"])
        connection.close()
    finally:
        service.shutdown()
        service.server_close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].isprintable() and lines[0].endswith(" 200")
