# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the auth server is and how to ask it: ``GET /<user>`` over TCP or its Unix socket.

Okera's contract is kept as it is: the answer is the path of a token file (plain text),
which also works with Okera's own authserver binary. Each request uses its own
connection, closed after the answer.
"""

from __future__ import annotations

import http.client
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import quote, urlsplit

from okera_auth.module_utils._http import without_userinfo
from okera_auth.module_utils.errors import looks_like_secret, shown, shown_path, withheld
from .errors import BadAnswerError, ClientSettingsError, ServerAnswerError, ServerUnreachableError

DEFAULT_URL = "http://127.0.0.1:5001"
URL_VARIABLE = "OKERA_AUTHSERVER_URL"
UNIX_SOCKET_VARIABLE = "OKERA_AUTHSERVER_UNIX_SOCKET"
DEFAULT_TIMEOUT = 10.0
# An answer is a path or a one-line error; anything longer is not from an auth server.
MAX_ANSWER_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 300
# A local server answers in milliseconds; a day is past any sensible wait (and far below what a
# socket's timeout can hold: 1e20 s overflows it).
MAX_TIMEOUT = 24 * 3600
# Characters left as they are in the request path; the server percent-decodes once.
_USER_SAFE_CHARS = "@._-"


@dataclass(frozen=True)
class ServerAddress:
    """One auth server: a TCP host and port, or a Unix socket."""

    host: str = "127.0.0.1"
    port: int = 5001
    unix_socket: Optional[str] = None

    @property
    def label(self) -> str:
        """How messages name the server, and the key of what is remembered from it."""
        if self.unix_socket:
            return "unix:" + self.unix_socket
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    @property
    def shown(self) -> str:
        """The label as a message shows it (a control character would rewrite the terminal)."""
        return shown_path(self.label)


def checked_timeout(timeout: Any) -> float:
    """Seconds the whole exchange with the server may take: more than 0, at most a day."""
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout)
            or not 0 < timeout <= MAX_TIMEOUT):
        raise ClientSettingsError("timeout %s is not a number of seconds above 0 and at most %d (a day)"
                                  % (shown(timeout), MAX_TIMEOUT))
    return float(timeout)


def parse_url(url: str) -> ServerAddress:
    """The address in an ``http://host:port`` URL; credentials in it are ignored, as Okera does."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise ClientSettingsError("auth server URL %s is not valid: %s" % (shown(without_userinfo(url)), error)) from None
    if parts.scheme != "http":
        raise ClientSettingsError("auth server URL %s must start with http:// (the server only "
                                  "listens on loopback, without TLS)" % shown(without_userinfo(url)))
    if not parts.hostname:
        raise ClientSettingsError("auth server URL %s has no host: write e.g. %s"
                                  % (shown(without_userinfo(url)), DEFAULT_URL))
    try:
        parts.hostname.encode("idna")  # what the connection does with it
    except UnicodeError:
        raise ClientSettingsError("auth server URL %s has no valid host name: write e.g. %s"
                                  % (shown(without_userinfo(url)), DEFAULT_URL)) from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ClientSettingsError("auth server URL %s must not have a path or query: the client "
                                  "asks for /<user> itself" % shown(without_userinfo(url)))
    return ServerAddress(host=parts.hostname, port=port if port is not None else 80)


def resolve_server(url: Optional[str] = None, unix_socket: Optional[str] = None,
                   environ: Optional[Mapping[str, str]] = None) -> ServerAddress:
    """The server to ask: the arguments win over ``OKERA_AUTHSERVER_UNIX_SOCKET``, which wins
    over ``OKERA_AUTHSERVER_URL``, which wins over http://127.0.0.1:5001."""
    if url and unix_socket:
        raise ClientSettingsError("give a URL or a Unix socket, not both")
    if unix_socket:
        return ServerAddress(unix_socket=unix_socket)
    if url:
        return parse_url(url)
    environ = os.environ if environ is None else environ
    if environ.get(UNIX_SOCKET_VARIABLE):
        return ServerAddress(unix_socket=environ[UNIX_SOCKET_VARIABLE])
    return parse_url(environ.get(URL_VARIABLE) or DEFAULT_URL)


class _DeadlineSocket(socket.socket):
    """A socket whose reads all end by one deadline: a server dripping its answer a byte at a
    time (each read within the timeout) cannot hold the client longer than the timeout."""

    deadline = 0.0

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.settimeout(left)
        return super().recv_into(buffer, nbytes, flags)


class _AnswerConnection(http.client.HTTPConnection):
    """HTTP/1.1 to one server (TCP or Unix socket) whose answer must come within ``timeout``
    of the request's start, all of it."""

    def __init__(self, server: ServerAddress, timeout: float) -> None:
        super().__init__(server.host, server.port, timeout=timeout)
        self.server = server
        self.deadline = time.monotonic() + timeout

    def connect(self) -> None:
        if self.server.unix_socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self.server.unix_socket)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self.host, self.port), self.timeout)
        deadline_socket = _DeadlineSocket(fileno=sock.detach())
        deadline_socket.deadline = self.deadline
        deadline_socket.settimeout(self.timeout)
        self.sock = deadline_socket


def _one_line(text: str) -> str:
    """A server's error message made safe to show on one line (a token in it is withheld)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = "".join(char if char.isprintable() else "?" for char in line)
    if looks_like_secret(line):
        return withheld(line)
    return line if len(line) <= MAX_MESSAGE_CHARS else line[:MAX_MESSAGE_CHARS] + "..."


def _unreachable(server: ServerAddress, error: OSError, timeout: float) -> ServerUnreachableError:
    where = server.shown
    socket_path = shown_path(server.unix_socket)
    start = ("start okera-authserver with --unix-socket %s" % socket_path
             if server.unix_socket else "start okera-authserver, or give its address with "
             "--url or %s" % URL_VARIABLE)
    if isinstance(error, socket.timeout):
        return ServerUnreachableError("no answer from the auth server at %s within %gs"
                                      % (where, timeout))
    if isinstance(error, ConnectionRefusedError):
        return ServerUnreachableError("cannot reach the auth server at %s: connection refused; %s"
                                      % (where, start))
    if isinstance(error, FileNotFoundError) and server.unix_socket:
        return ServerUnreachableError("cannot reach the auth server: there is no socket %s; %s"
                                      % (socket_path, start))
    if isinstance(error, PermissionError) and server.unix_socket:
        return ServerUnreachableError("cannot connect to %s: permission denied; the caller must "
                                      "be in the socket's group" % socket_path)
    if isinstance(error, (ConnectionError, http.client.RemoteDisconnected)):
        return ServerUnreachableError("the auth server at %s closed the connection without an "
                                      "answer (is it restarting?)" % where)
    reason = _one_line(error.strerror or str(error)) or type(error).__name__
    return ServerUnreachableError("cannot reach the auth server at %s: %s" % (where, reason))


def ask_for_token_file(server: ServerAddress, user: str,
                       timeout: float = DEFAULT_TIMEOUT) -> str:
    """Ask the server to mint a token for ``user``; returns the path of the file it wrote.

    The whole exchange (connecting, the answer's head and body) takes at most ``timeout``."""
    connection = _AnswerConnection(server, checked_timeout(timeout))
    try:
        connection.request("GET", "/" + quote(user, safe=_USER_SAFE_CHARS),
                           headers={"Accept": "text/plain", "Connection": "close"})
        response = connection.getresponse()
        body = response.read(MAX_ANSWER_BYTES)
    except http.client.RemoteDisconnected as error:  # before any answer: a server going away
        raise _unreachable(server, error, timeout) from None
    except http.client.HTTPException:
        raise BadAnswerError("the answer of %s is not HTTP: is it an okera-authserver?"
                             % server.shown) from None
    except OSError as error:
        raise _unreachable(server, error, timeout) from None
    finally:
        connection.close()
    text = body.decode("utf-8", "replace")
    if response.status in (400, 403):
        raise ServerAnswerError("the auth server at %s refused the request for %s: %s"
                                % (server.shown, shown(user), _one_line(text)), response.status)
    if response.status != 200:
        raise ServerAnswerError("the auth server at %s answered %d %s: %s"
                                % (server.shown, response.status, _one_line(response.reason),
                                   _one_line(text)), response.status)
    path = text.strip()
    # Never quote the answer itself: were it a token (JSON, a proxy), it would end up in a log.
    # A file the server made has a printable absolute name; anything else is not such a file.
    if not path or not path.isprintable() or not os.path.isabs(path) or len(body) >= MAX_ANSWER_BYTES:
        raise BadAnswerError("the answer of %s is not a token file path (%d bytes of %s): is it "
                             "an okera-authserver?" % (server.shown, len(body),
                                                       _one_line(response.getheader("Content-Type", "?"))))
    return path
