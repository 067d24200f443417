# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The auth server's HTTP/1.1 layer: an asyncio protocol, keep-alive, a small strict parser.

Why not http.server: its keep-alive answers are written in several small
sends that meet delayed ACKs (about 44 ms a request). Why not asyncio streams:
a coroutine, a reader and a timer per request cost more than the parsing.
Here each connection is an asyncio.Protocol: bytes arrive, a complete request
head is parsed and answered in the same callback (the token signed right there,
or with --workers in a thread pool), and each answer is one send. Several
worker processes (--processes) each run one of these on the same port.
Limits keep a client from holding the
server: the request head has a size cap and must arrive within a timeout,
and the number of open connections is capped. At the cap, the connection that
has waited longest for a request head is closed to make room (idle connections
are cheap to lose: a client reconnects), waits for a head are short while the
server is near the cap, and running out of file descriptors in accept() is one
log line every few seconds, not a traceback per attempt.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import struct
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from okera_auth.module_utils.errors import OkeraAuthError
from .events import EventLog, Metrics
from .issuer import (
    DirectoryChangedError, NameClock, PendingDeletions, TokenIssuer, UserNameError,
    decode_user_name, is_reserved_name,
)

MAX_HEAD_BYTES = 16 * 1024
# An answer is small; a client that does not read several of them is not a client.
MAX_UNREAD_ANSWER_BYTES = 256 * 1024
LINGER_SECONDS = 1.0
# Near the connection cap (this share of it), a connection waits at most PRESSURE_HEAD_SECONDS
# for its next request head instead of --header-timeout: idle connections go sooner.
PRESSURE_SHARE = 0.75
PRESSURE_HEAD_SECONDS = 2.0
# accept() out of descriptors or memory: asyncio stops accepting for a second and tries again;
# the server says so in one line at most every ACCEPT_LOG_SECONDS and closes idle connections.
ACCEPT_RESOURCE_ERRORS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
ACCEPT_LOG_SECONDS = 5.0
ACCEPT_EVICT_SECONDS = 1.0
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable", 505: "HTTP Version Not Supported"}
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
_PEERCRED = struct.Struct("3i")
_VISIBLE_ASCII = bytes(range(0x21, 0x7f))
# The head of the answer to almost every request: a token's path, kept alive.
_PATH_ANSWER_HEAD = ("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %%d\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n"
                     % TEXT).encode("latin-1")


@dataclass
class Limits:
    header_timeout: float = 10.0
    max_connections: int = 512
    drain_timeout: float = 10.0


@dataclass(frozen=True)
class CallerPolicy:
    """Unix-socket callers allowed by uid or primary gid (SO_PEERCRED); empty sets allow all."""

    uids: FrozenSet[int] = frozenset()
    gids: FrozenSet[int] = frozenset()

    def allows(self, uid: int, gid: int) -> bool:
        if not self.uids and not self.gids:
            return True
        return uid in self.uids or gid in self.gids


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = TEXT
    close: bool = False
    headers: Tuple[Tuple[str, str], ...] = ()


def _error(status: int, message: str, close: bool = False, **headers: str) -> Answer:
    return Answer(status, (message + "\n").encode("utf-8"), TEXT, close,
                  tuple((name.replace("_", "-"), value) for name, value in headers.items()))


def _json_answer(document: Any, status: int = 200) -> Answer:
    return Answer(status, json.dumps(document, separators=(",", ":")).encode("utf-8"), JSON)


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: Dict[str, str]
    has_body: bool


class _BadRequest(Exception):
    pass


def parse_head(head: bytes) -> _Request:
    """Parse a request head (ending in CRLF CRLF); raises _BadRequest with the reason."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise _BadRequest("malformed request line")
    method, target, version = parts
    if not version.startswith(b"HTTP/1."):
        raise _BadRequest("unsupported protocol version")
    if target.translate(None, _VISIBLE_ASCII):
        raise _BadRequest("the request target holds a control, space or non-ASCII byte")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
            raise _BadRequest("malformed header line")
        key = name.decode("latin-1").lower()
        text = value.strip(b" \t").decode("latin-1")
        if key in headers and key in ("content-length", "transfer-encoding"):
            raise _BadRequest("repeated %s header" % key)
        headers[key] = text
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise _BadRequest("invalid Content-Length")
    has_body = int(length) > 0 or "transfer-encoding" in headers
    return _Request(method.decode("ascii"), target.decode("ascii"), version.decode("ascii"),
                    headers, has_body)


def _keep_alive(request: _Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.1":
        return "close" not in connection
    return "keep-alive" in connection


def _encode(answer: Answer, keep_alive: bool, version: str) -> bytes:
    lines = ["HTTP/1.1 %d %s" % (answer.status, REASONS[answer.status]),
             "Content-Type: " + answer.content_type,
             "Content-Length: %d" % len(answer.body),
             "Cache-Control: no-store",
             "X-Content-Type-Options: nosniff"]
    lines.extend("%s: %s" % header for header in answer.headers)
    if not keep_alive:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.body


def _escapes(segment: str) -> bool:
    """Whether a path segment tries to leave its place: a dot segment, NUL or a separator."""
    decoded = unquote(segment)
    return decoded in (".", "..") or any(char in decoded for char in "\x00/\\")


def names_endpoint_in_disguise(path: str) -> bool:
    """Whether a request path spelled with percent-escapes names one of the endpoints.

    The rule: healthz, metrics and .well-known are the server's and never user names,
    whatever their spelling. The endpoints answer only their plain spelling; a path whose
    first segment, once decoded (empty and '.' segments skipped, any letter case), is one
    of those names but which was written with escapes (/%68ealthz, /%2Fmetrics,
    /.well-known%2Fjwks.json) is refused with 400 rather than routed: one spelling per
    endpoint, so whatever filters or watches requests by path (a proxy rule, an alert on
    /metrics) sees exactly what is served, and no such path can ever mint a token.
    """
    if "%" not in path:
        return False
    segments = [segment for segment in unquote(path).split("/") if segment not in ("", ".")]
    return bool(segments) and is_reserved_name(segments[0])


class _TokenRequest:
    """A request routed to a new token, not answered yet."""

    __slots__ = ("user", "wants_json")

    def __init__(self, user: str, wants_json: bool) -> None:
        self.user = user
        self.wants_json = wants_json


class _Connection(asyncio.Protocol):
    """One client connection: its unparsed bytes, its state, and the timer of its wait for a
    request head (one timer per connection, moved only when it fires, not one per request)."""

    def __init__(self, server: "HttpServer", unix: bool = False) -> None:
        self.server = server
        self.unix = unix
        self.transport: Any = None
        self.buffer = bytearray()
        self.idle = True  # waiting for a request head (closed first at a drain)
        self.busy = False  # a token is being made in a signing thread
        self.timed_out = False
        self.unread_input = False  # closing now could reset the connection under the answer
        self.evicted = False  # closed to make room for another connection
        self.closed = False
        self.lingering = False
        self.paused = False
        self.eof = False
        self.deadline = 0.0
        self.timer: Optional[asyncio.TimerHandle] = None
        self.linger_timer: Optional[asyncio.TimerHandle] = None
        self.refusal: Optional[Answer] = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        server = self.server
        if self.unix:
            self.refusal = server.check_caller(transport.get_extra_info("socket"))
        if server.draining or not server.make_room():
            server.metrics.error("overloaded")
            transport.write(_encode(_error(503, "too many connections: try again", close=True),
                                    False, "HTTP/1.1"))
            self._linger()
            return
        server._connections.add(self)
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        if self.lingering or self.closed:
            return
        self.buffer += data
        if self.busy:
            if len(self.buffer) > MAX_HEAD_BYTES and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._process()

    def eof_received(self) -> Optional[bool]:
        if self.busy:  # the answer is on its way: close after it
            self.eof = True
            return True
        return None  # asyncio closes the transport (after what is already written)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        self.server._forget(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.linger_timer is not None:
            self.linger_timer.cancel()
            self.linger_timer = None

    # -- requests ----------------------------------------------------------------------------

    def _wait_for_head(self) -> None:
        server = self.server
        self.idle = True
        timeout = server.limits.header_timeout
        if len(server._connections) >= server.limits.max_connections * PRESSURE_SHARE:
            timeout = min(timeout, PRESSURE_HEAD_SECONDS)
        loop = server.loop
        self.deadline = loop.time() + timeout
        server._waiting[self] = None
        timer = self.timer
        if timer is None or timer.when() > self.deadline:
            if timer is not None:
                timer.cancel()
            self.timer = loop.call_at(self.deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self.timer = None
        if self.closed or self not in self.server._waiting:
            return  # being answered: its next wait arms the timer again
        if self.server.loop.time() >= self.deadline - 0.001:
            self.timed_out = True
            if self.buffer:  # part of a head came, the rest did not
                self.server.metrics.error("header_timeout")
            self.transport.abort()
        else:
            self.timer = self.server.loop.call_at(self.deadline, self._check_deadline)

    def _resume(self) -> None:
        if not (self.closed or self.busy or self.lingering):
            self._process()

    def _process(self) -> None:
        """Answer the first complete request head in the buffer, if there is one."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0 or end + 4 > MAX_HEAD_BYTES:
            if end >= 0 or len(buffer) > MAX_HEAD_BYTES:
                server = self.server
                server.metrics.error("header_too_large")
                server._waiting.pop(self, None)
                self.unread_input = True
                self.transport.write(_encode(_error(
                    431, "the request head is larger than %d bytes" % MAX_HEAD_BYTES,
                    close=True), False, "HTTP/1.1"))
                self._finish()
            return
        server = self.server
        head = bytes(buffer[:end + 4])
        del buffer[:end + 4]
        server._waiting.pop(self, None)
        self.idle = False
        started = server.loop.time()
        try:
            request = parse_head(head)
        except _BadRequest as error:
            server.metrics.error("bad_request")
            self._send(None, _error(400, "bad request: %s" % error, close=True), started)
            return
        answer = self.refusal or server.route(request)
        if answer.__class__ is _TokenRequest:
            if server.executor is None:
                answer = server.issue_now(answer)
            else:
                self.busy = True
                server.issue_later(answer, lambda result: self._answered(request, result, started))
                return
        self._send(request, answer, started)

    def _answered(self, request: _Request, answer: Answer, started: float) -> None:
        """The answer of a token made in a signing thread."""
        self.busy = False
        if self.closed:
            return
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        self._send(request, answer, started)

    def _send(self, request: Optional[_Request], answer: Answer, started: float) -> None:
        server = self.server
        keep_alive = (request is not None and not answer.close and not request.has_body
                      and not server.draining and not self.eof and _keep_alive(request))
        self.unread_input = answer.close or (request is not None and request.has_body)
        if (keep_alive and answer.status == 200 and answer.content_type is TEXT
                and not answer.headers and request.version == "HTTP/1.1"):
            self.transport.write(_PATH_ANSWER_HEAD % len(answer.body) + answer.body)
        else:
            self.transport.write(_encode(answer, keep_alive,
                                         request.version if request else "HTTP/1.1"))
        server.metrics.latency.observe(server.loop.time() - started)
        if (not keep_alive or self.evicted
                or self.transport.get_write_buffer_size() > MAX_UNREAD_ANSWER_BYTES):
            self._finish()  # the last answer, or a client that does not read its answers
            return
        self._wait_for_head()
        if self.buffer:  # pipelined: the next request after the other connections' turn
            server.loop.call_soon(self._resume)

    def _finish(self) -> None:
        self.server._forget(self)
        if self.unread_input and not self.timed_out:
            self._linger()
        else:
            self.transport.close()

    def _linger(self) -> None:
        """Close after a last answer without a reset: a request still arriving would make the
        kernel send RST, and the client could lose the answer. So: send FIN after the answer,
        read and drop what comes for up to LINGER_SECONDS, then close."""
        self.lingering = True
        transport = self.transport
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except (OSError, RuntimeError):
            transport.close()
            return
        self.linger_timer = self.server.loop.call_later(LINGER_SECONDS, transport.close)


class HttpServer:
    """Serves token, health, metrics and JWKS requests for one TokenIssuer.

    ``executor`` None signs in the event loop's own thread (the fastest: no hand-off, measured
    in benchmarks/bench_authserver.py); an executor signs in its threads (--workers N).
    """

    def __init__(self, issuer: TokenIssuer, executor: Optional[Executor], log: EventLog,
                 metrics: Metrics, deletions: Optional[PendingDeletions], limits: Limits,
                 callers: CallerPolicy) -> None:
        self.issuer = issuer
        self.executor = executor
        self.log = log
        self.metrics = metrics
        self.deletions = deletions
        self.limits = limits
        self.callers = callers
        self.clock = NameClock()
        self.draining = False
        self.loop: Any = None
        self._servers: list = []
        self._connections: set = set()
        # Connections waiting for a request head, the longest-waiting first: those closed
        # first when room is needed.
        self._waiting: "OrderedDict[_Connection, None]" = OrderedDict()
        self._accept_log_after = 0.0
        self._accept_failures_unlogged = 0
        self._accept_evicted_at = float("-inf")
        self._directory_problem: Optional[str] = None  # the last one logged

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def _forget(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        self._waiting.pop(connection, None)

    async def listen_tcp(self, host: str, port: int, reuse_port: bool = False) -> int:
        """Listen on host:port (port 0 picks a free one); returns the port. ``reuse_port``:
        beside the other worker processes on the same port (SO_REUSEPORT; the kernel spreads
        the connections over them)."""
        self.loop = asyncio.get_running_loop()
        server = await self.loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True,
            reuse_port=reuse_port or None, backlog=1024)
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def listen_unix(self, path: str) -> None:
        self.loop = asyncio.get_running_loop()
        server = await self.loop.create_unix_server(lambda: _Connection(self, unix=True), path,
                                                    backlog=1024)
        self._servers.append(server)

    async def serve_unix_socket(self, sock: socket.socket) -> None:
        """Serve on a listening Unix socket made by the supervisor (shared by the workers)."""
        self.loop = asyncio.get_running_loop()
        server = await self.loop.create_unix_server(lambda: _Connection(self, unix=True),
                                                    sock=sock, backlog=1024)
        self._servers.append(server)

    def check_caller(self, sock: Any) -> Optional[Answer]:
        """The 403 answer for a Unix-socket caller outside the allow-list (SO_PEERCRED), or
        None when the caller may ask."""
        if not self.callers.uids and not self.callers.gids:
            return None
        _pid, uid, gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if self.callers.allows(uid, gid):
            return None
        self.metrics.refused_callers += 1
        self.log.warning("caller_refused", "Refused caller uid=%d gid=%d: not in the "
                         "allowed uids/gids" % (uid, gid), uid=uid, gid=gid)
        return _error(403, "caller uid %d gid %d is not allowed on this socket" % (uid, gid),
                      close=True)

    def make_room(self) -> bool:
        """Whether one more connection may open: below the cap, or once the connection that
        has waited longest for a request head is closed (an idle keep-alive client between
        requests, or one that has not sent a whole head yet). A connection whose request is
        being answered is never closed: when every one is busy, the answer is 503."""
        if len(self._connections) < self.limits.max_connections:
            return True
        return self.evict_waiting(1) == 1

    def evict_waiting(self, count: int) -> int:
        """Close up to ``count`` connections waiting for a request head, oldest wait first."""
        closed = 0
        while closed < count and self._waiting:
            connection, _none = self._waiting.popitem(last=False)
            connection.evicted = True
            self._connections.discard(connection)
            connection.transport.close()  # answers already written are still sent
            self.metrics.connections_evicted += 1
            closed += 1
        return closed

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: Dict[str, Any]) -> None:
        """The event loop's exception handler: accept() out of resources is one rate-limited
        line and frees idle connections; anything else goes to asyncio's default handler."""
        error = context.get("exception")
        if (isinstance(error, OSError) and error.errno in ACCEPT_RESOURCE_ERRORS
                and "accept" in str(context.get("message", ""))):
            self.accept_failed(error, loop.time())
            return
        loop.default_exception_handler(context)

    def accept_failed(self, error: OSError, now: float) -> None:
        """asyncio stops accepting for a second after this (it may report several in a row)."""
        self.metrics.accept_failures += 1
        self._accept_failures_unlogged += 1
        if now - self._accept_evicted_at >= ACCEPT_EVICT_SECONDS:
            # Each idle connection holds a descriptor: give half of them back.
            self._accept_evicted_at = now
            self.evict_waiting(max(1, len(self._waiting) // 2))
        if now < self._accept_log_after:
            return
        self._accept_log_after = now + ACCEPT_LOG_SECONDS
        count, self._accept_failures_unlogged = self._accept_failures_unlogged, 0
        name = errno.errorcode.get(error.errno or 0, "error")
        self.log.warning("accept_failed", "Cannot accept connections: %s (%s)%s; accepting again "
                         "every second, idle connections closed (raise LimitNOFILE or ulimit -n, "
                         "or lower --max-connections)"
                         % (error.strerror, name, ", %d failed attempts since the last such line"
                            % count if count > 1 else ""), errno=name, failures=count)

    def route(self, request: _Request) -> Any:
        """The answer to a request, or a _TokenRequest when a token is to be made."""
        if request.method != "GET":
            self.metrics.error("method_not_allowed")
            return _error(405, "method %s is not allowed: use GET" % request.method[:16],
                          close=request.has_body, Allow="GET")
        target = request.target
        if not target.startswith("/"):
            if not target.startswith(("http://", "https://")):
                self.metrics.error("bad_request")
                return _error(400, "bad request: the target must be a path such as /janedoe")
            parts = urlsplit(target)
            target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        path, _separator, query = target.partition("?")
        if names_endpoint_in_disguise(path):
            self.metrics.error("bad_request")
            return _error(400, "bad request: the path names an endpoint of this server through "
                               "percent-escapes; ask for /healthz, /metrics or "
                               "/.well-known/jwks.json as written")
        if path == "/healthz":
            return self._health()
        if path == "/metrics":
            return Answer(200, self.metrics.render(
                len(self.deletions) if self.deletions else 0, len(self._connections),
                self.issuer.signer.kid).encode("utf-8"), PROMETHEUS)
        if path == "/.well-known/jwks.json":
            return _json_answer(self.issuer.jwks())
        if path.find("/", 1) > 0:
            segments = path[1:].split("/")
            if not any(map(_escapes, segments)):
                self.metrics.error("not_found")
                return _error(404, "not found: ask for /<user>, /healthz, /metrics or "
                                   "/.well-known/jwks.json")
        try:
            user = decode_user_name(path[1:])
        except UserNameError as error:
            self.metrics.error("bad_user")
            return _error(400, "bad user name: %s" % error)
        wants_json = bool(query) and "json" in parse_qs(query).get("format", ())
        if not wants_json and "accept" in request.headers:
            wants_json = "application/json" in request.headers["accept"]
        return _TokenRequest(user, wants_json)

    def issue_now(self, token: _TokenRequest) -> Answer:
        """Make the token in this thread (the event loop's) and answer."""
        metrics = self.metrics
        metrics.tokens_in_progress += 1
        try:
            issued = self.issuer.issue(token.user, self.clock.next())
        except Exception as error:  # noqa: BLE001 - one request fails, the server goes on
            return self._issue_failed(token.user, error)
        finally:
            metrics.tokens_in_progress -= 1
        return self._issued(token, issued)

    def issue_later(self, token: _TokenRequest, answer: Any) -> None:
        """Make the token in a signing thread; ``answer(Answer)`` is called in the loop."""
        self.metrics.tokens_in_progress += 1
        future = self.loop.run_in_executor(self.executor, self.issuer.issue, token.user,
                                           self.clock.next())

        def done(finished: "asyncio.Future") -> None:
            self.metrics.tokens_in_progress -= 1
            if finished.cancelled():
                answer(self._issue_failed(token.user, RuntimeError("cancelled")))
            elif finished.exception() is not None:
                answer(self._issue_failed(token.user, finished.exception()))
            else:
                answer(self._issued(token, finished.result()))

        future.add_done_callback(done)

    def _issue_failed(self, user: str, error: BaseException) -> Answer:
        if isinstance(error, DirectoryChangedError):
            self.metrics.error("directory_changed")
            self._report_directory(str(error))
            return _error(503, "no token written: %s" % error)
        if isinstance(error, OkeraAuthError):
            self.metrics.error("issue_failed")
            self.log.error("issue_failed", "Could not issue a token for %s: %s" % (user, error),
                           user=user)
            return _error(500, "could not issue a token: %s" % error)
        self.metrics.error("internal")
        self.log.error("internal_error", "Could not issue a token for %s: unexpected %s"
                       % (user, type(error).__name__), user=user)
        return _error(500, "could not issue a token: internal error")

    def _issued(self, token: _TokenRequest, issued: Any) -> Answer:
        if self._directory_problem is not None:
            self._report_directory(None)
        if self.deletions is not None:
            self.deletions.schedule(issued.path)
        self.metrics.tokens_issued += 1
        self.log.event("generated", "Generated token: %s" % issued.path, path=issued.path,
                       user=token.user, expires_at=issued.expires_at)
        if token.wants_json:
            return _json_answer({"path": issued.path, "token": issued.token,
                                 "expires_at": issued.expires_at})
        return Answer(200, issued.path.encode("utf-8"))

    def _report_directory(self, problem: Optional[str]) -> None:
        """Log a change of the token directory's state once, not once per request."""
        if problem == self._directory_problem:
            return
        self._directory_problem = problem
        if problem:
            self.log.error("directory_changed", "Token directory changed, no token is written: "
                           "%s" % problem, path=self.issuer.directory)
        else:
            self.log.event("directory_restored", "Token directory %s is usable again"
                           % self.issuer.directory, path=self.issuer.directory)

    def publish_gauges(self) -> None:
        """This process's pending deletions and open connections, for the other processes."""
        self.metrics.publish(len(self.deletions) if self.deletions else 0,
                             len(self._connections))

    def _health(self) -> Answer:
        directory = self.issuer.token_directory
        problem = directory.problem()
        self._report_directory(problem)
        writable = problem is None and directory.writable()
        if problem is None and not writable:
            problem = "token directory %s is not writable by the server" % directory.path
        signer = self.issuer.signer
        self.publish_gauges()
        document = {"status": "ok" if writable else "unavailable",
                    "directory": directory.path, "directory_writable": writable,
                    "kid": signer.kid, "algorithm": signer.algorithm,
                    "pending_deletions": self.metrics.pending_deletions_total(),
                    "draining": self.draining}
        if problem:
            document["reason"] = problem
        return _json_answer(document, 200 if writable and not self.draining else 503)

    async def drain(self) -> None:
        """Stop listening, let in-flight requests finish (bounded), close every connection."""
        self.draining = True
        for server in self._servers:
            server.close()
        for connection in list(self._connections):
            if connection.idle:
                self._forget(connection)
                connection.transport.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.drain_timeout
        while self._connections and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self._connections):
            connection.transport.abort()
