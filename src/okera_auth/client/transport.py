# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the auth server is and how to ask it: ``GET /<user>`` over TCP or its Unix socket.

Okera's contract is kept as it is: the answer is the path of a token file (plain text),
which also works with Okera's own authserver binary. Each request uses its own
connection, closed after the answer.
"""

from __future__ import annotations

import http.client
import os
import socket
from dataclasses import dataclass
from typing import Mapping, Optional
from urllib.parse import quote, urlsplit

from okera_auth.module_utils._http import without_userinfo
from okera_auth.module_utils.errors import shown
from .errors import BadAnswerError, ClientSettingsError, ServerAnswerError, ServerUnreachableError

DEFAULT_URL = "http://127.0.0.1:5001"
URL_VARIABLE = "OKERA_AUTHSERVER_URL"
UNIX_SOCKET_VARIABLE = "OKERA_AUTHSERVER_UNIX_SOCKET"
DEFAULT_TIMEOUT = 10.0
# An answer is a path or a one-line error; anything longer is not from an auth server.
MAX_ANSWER_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 300
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


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket: only the connection differs from TCP."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _one_line(text: str) -> str:
    """A server's error message made safe to show on one line."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = "".join(char if char.isprintable() else "?" for char in line)
    return line if len(line) <= MAX_MESSAGE_CHARS else line[:MAX_MESSAGE_CHARS] + "..."


def _unreachable(server: ServerAddress, error: OSError, timeout: float) -> ServerUnreachableError:
    where = server.label
    start = ("start okera-authserver with --unix-socket %s" % server.unix_socket
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
                                      % (server.unix_socket, start))
    if isinstance(error, PermissionError) and server.unix_socket:
        return ServerUnreachableError("cannot connect to %s: permission denied; the caller must "
                                      "be in the socket's group" % server.unix_socket)
    if isinstance(error, (ConnectionError, http.client.RemoteDisconnected)):
        return ServerUnreachableError("the auth server at %s closed the connection without an "
                                      "answer (is it restarting?)" % where)
    reason = error.strerror or str(error) or type(error).__name__
    return ServerUnreachableError("cannot reach the auth server at %s: %s" % (where, reason))


def ask_for_token_file(server: ServerAddress, user: str,
                       timeout: float = DEFAULT_TIMEOUT) -> str:
    """Ask the server to mint a token for ``user``; returns the path of the file it wrote."""
    if server.unix_socket:
        connection: http.client.HTTPConnection = _UnixHTTPConnection(server.unix_socket, timeout)
    else:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        connection.request("GET", "/" + quote(user, safe=_USER_SAFE_CHARS),
                           headers={"Accept": "text/plain", "Connection": "close"})
        response = connection.getresponse()
        body = response.read(MAX_ANSWER_BYTES)
    except http.client.RemoteDisconnected as error:  # before any answer: a server going away
        raise _unreachable(server, error, timeout) from None
    except http.client.HTTPException:
        raise BadAnswerError("the answer of %s is not HTTP: is it an okera-authserver?"
                             % server.label) from None
    except OSError as error:
        raise _unreachable(server, error, timeout) from None
    finally:
        connection.close()
    text = body.decode("utf-8", "replace")
    if response.status in (400, 403):
        raise ServerAnswerError("the auth server at %s refused the request for %s: %s"
                                % (server.label, shown(user), _one_line(text)), response.status)
    if response.status != 200:
        raise ServerAnswerError("the auth server at %s answered %d %s: %s"
                                % (server.label, response.status, response.reason,
                                   _one_line(text)), response.status)
    path = text.strip()
    # Never quote the answer itself: were it a token (JSON, a proxy), it would end up in a log.
    if (not path or "\n" in path or "\x00" in path or not os.path.isabs(path)
            or len(body) >= MAX_ANSWER_BYTES):
        raise BadAnswerError("the answer of %s is not a token file path (%d bytes of %s): is it "
                             "an okera-authserver?" % (server.label, len(body),
                                                       response.getheader("Content-Type", "?")))
    return path
