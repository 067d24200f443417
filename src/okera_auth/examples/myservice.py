# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The example service of Okera's auth-server tutorial, ported to the standard library.

The tutorial's service takes a user from HTTP Basic credentials, gets a token for that user
from the auth server beside it, and lists the databases that user may see. This port does the
same without PyOkera: the token comes from ``okera_auth.client.get_token`` (the auth server at
``OKERA_AUTHSERVER_URL``, or its Unix socket, else http://127.0.0.1:5001), and the databases
from the cluster's REST API, ``GET <OKERA_REST_URL>/api/databases`` with
``Authorization: Bearer <token>``. The answer is the databases' names as a JSON list::

    python -m okera_auth.examples.myservice --rest-url https://okera.example.com:8083
    curl http://test:test@localhost:5010        # ["default", "okera_sample"]

Passwords are checked only when ``--users-file`` names an htpasswd file of bcrypt hashes
(``htpasswd -B``); without it any password is taken, as in the tutorial: a demonstration,
so it listens on 127.0.0.1 unless told otherwise. Tokens and passwords are never logged.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Sequence

from okera_auth.client import ClientError, ServerAnswerError, ServerUnreachableError
from okera_auth.client import forget_tokens, get_token
from okera_auth.client.transport import checked_timeout
from okera_auth.module_utils._http import has_userinfo, without_userinfo
from okera_auth.module_utils.errors import OkeraAuthError, shown
from okera_auth.module_utils.tokens import json_nests_too_deep

PROGRAM = "myservice"
DEFAULT_PORT = 5010
DEFAULT_BIND = "127.0.0.1"
DATABASES_PATH = "/api/databases"
EXIT_USAGE = 2
# The REST API's answer and the users file are small; more is not what was asked for.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_USERS_FILE_BYTES = 1024 * 1024
MAX_ERROR_CHARS = 300


class ServiceError(OkeraAuthError):
    """A request could not be answered; ``status`` is what the caller gets."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _TokenRejected(ServiceError):
    """The REST API answered 401: the token was not accepted (expired, wrong key)."""


@dataclass(frozen=True)
class ServiceSettings:
    """Where the service listens and whom it asks."""

    port: int = DEFAULT_PORT
    bind: str = DEFAULT_BIND
    rest_url: str = ""
    authserver_url: Optional[str] = None  # None: the client's own rule (OKERA_AUTHSERVER_URL, ...)
    users_file: Optional[str] = None
    rest_ca_file: Optional[str] = None
    timeout: float = 10.0


def _go_time() -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S")


def log(message: str) -> None:
    """One log line: a user name or path a caller sent cannot start another line or steer the
    terminal (characters that are not printable are written as ?)."""
    line = "".join(char if char.isprintable() else "?" for char in message)
    sys.stderr.write("%s %s\n" % (_go_time(), line))
    sys.stderr.flush()


def _one_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = "".join(char if char.isprintable() else "?" for char in line)
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS] + "..."


def _json(text: str) -> Any:
    """The JSON document in an answer; ValueError when it is not JSON or nests deeper than a
    document of the REST API does (Python's parser would run out of stack)."""
    if json_nests_too_deep(text):
        raise ValueError("nested too deep")
    return json.loads(text)


def _error_message(body: bytes) -> str:
    """The message of an error answer: Okera's ``{"code", "message"}``, else its first line."""
    text = body.decode("utf-8", "replace")
    try:
        document = _json(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        text = document["message"]
    return _one_line(text)


def load_users(path: str) -> Dict[str, bytes]:
    """user -> bcrypt hash, from an htpasswd file (``htpasswd -B``); other hashes are refused."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_USERS_FILE_BYTES + 1)
    except OSError as error:
        raise OkeraAuthError("cannot read the users file %s: %s"
                             % (path, error.strerror or error)) from None
    if len(data) > MAX_USERS_FILE_BYTES:
        raise OkeraAuthError("users file %s is larger than 1 MiB" % path)
    users = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, colon, hashed = line.strip().partition(":")
        if not colon or not hashed.startswith(("$2y$", "$2b$", "$2a$")):
            raise OkeraAuthError("users file %s, line %d: not user:bcrypt-hash (make it with "
                                 "htpasswd -B)" % (path, number))
        users[user] = hashed.encode("ascii")
    return users


def database_names(document: Any) -> List[str]:
    """The names in the REST API's answer: a list of names or of objects with a name, bare or
    under "databases"."""
    items = document.get("databases") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ValueError("no list of databases")
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str):
            raise ValueError("a database without a name")
        names.append(name)
    return names


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """The REST API answers /api/databases itself: a redirect would carry the token (urllib
    sends every header again) to wherever it points, so it is an error answer instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class DatabaseLister:
    """Token in, the databases the token's user may see out."""

    def __init__(self, settings: ServiceSettings,
                 token_source: Callable[..., str] = get_token) -> None:
        if not settings.rest_url:
            raise OkeraAuthError("no REST API URL given: use --rest-url URL or OKERA_REST_URL "
                                 "(the Okera cluster's REST server, e.g. "
                                 "https://okera.example.com:8083)")
        if has_userinfo(settings.rest_url):
            raise OkeraAuthError("the REST API URL holds a user name or password: give it without them; "
                                 "the service sends the token")
        if not settings.rest_url.startswith(("http://", "https://")):
            raise OkeraAuthError("REST API URL %s must start with http:// or https://"
                                 % shown(without_userinfo(settings.rest_url)))
        self.settings = settings
        self.url = settings.rest_url.rstrip("/") + DATABASES_PATH
        self.token_source = token_source
        context = None
        if settings.rest_ca_file:
            try:
                context = ssl.create_default_context(cafile=settings.rest_ca_file)
            except (OSError, ssl.SSLError) as error:
                raise OkeraAuthError("cannot use the CA file %s: %s"
                                     % (settings.rest_ca_file, error)) from None
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                                  _RefuseRedirects)

    def token(self, user: str) -> str:
        try:
            return self.token_source(user, url=self.settings.authserver_url,
                                     timeout=self.settings.timeout)
        except ServerAnswerError as error:
            # 400: a name the auth server refuses; 403: a caller it refuses.
            status = error.status if error.status in (400, 403) else 502
            raise ServiceError("no token for %s: %s" % (shown(user), error), status) from None
        except ServerUnreachableError as error:
            raise ServiceError("no token for %s: %s" % (shown(user), error), 503) from None
        except ClientError as error:
            raise ServiceError("no token for %s: %s" % (shown(user), error), 502) from None

    def databases(self, user: str) -> List[str]:
        try:
            return self._list(self.token(user))
        except _TokenRejected:
            # Another key, or a token the cluster ended early: forget it and ask once more.
            forget_tokens()
            try:
                return self._list(self.token(user))
            except _TokenRejected as error:
                raise ServiceError(str(error), 502) from None

    def _list(self, token: str) -> List[str]:
        request = urllib.request.Request(self.url, headers={
            "Authorization": "Bearer " + token, "Accept": "application/json"})
        try:
            with self.opener.open(request, timeout=self.settings.timeout) as answer:
                body = answer.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as error:
            reason = _error_message(error.read(4096)) or error.reason
            if error.code == 401:
                raise _TokenRejected("the REST API at %s did not accept the token: %s"
                                     % (self.url, reason), 502) from None
            if error.code == 403:
                raise ServiceError("the REST API at %s refused: %s" % (self.url, reason),
                                   403) from None
            raise ServiceError("the REST API at %s answered %d: %s"
                               % (self.url, error.code, reason), 502) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise ServiceError("cannot reach the REST API at %s: %s" % (self.url, reason),
                               502) from None
        try:
            if len(body) > MAX_ANSWER_BYTES:
                raise ValueError("too large")
            return database_names(_json(body.decode("utf-8")))
        except ValueError:
            raise ServiceError("the answer of %s is not a list of databases" % self.url,
                               502) from None


def basic_credentials(header: Optional[str]) -> Optional[tuple]:
    """(user, password) of an ``Authorization: Basic ...`` header, else None."""
    if not header:
        return None
    scheme, _space, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = text.partition(":")
    return (user, password) if colon and user else None


class MyService(ThreadingHTTPServer):
    """``GET /`` with HTTP Basic credentials: the user's databases as a JSON list."""

    daemon_threads = True

    def __init__(self, settings: ServiceSettings, lister: DatabaseLister,
                 users: Optional[Dict[str, bytes]] = None) -> None:
        self.settings = settings
        self.lister = lister
        self.users = users
        if ":" in settings.bind:
            self.address_family = socket.AF_INET6
        super().__init__((settings.bind, settings.port), _Handler)

    def password_ok(self, user: str, password: str) -> bool:
        if self.users is None:
            return True
        hashed = self.users.get(user)
        if hashed is None:
            return False
        import bcrypt  # a dependency of okera-auth; only needed with a users file

        return bcrypt.checkpw(password.encode("utf-8"), hashed)


class _Handler(BaseHTTPRequestHandler):
    server: MyService
    server_version = PROGRAM
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path not in ("/", DATABASES_PATH):
            self._answer(404, {"error": "not found: ask for / with HTTP Basic credentials"})
            return
        credentials = basic_credentials(self.headers.get("Authorization"))
        if credentials is None or not self.server.password_ok(*credentials):
            self._answer(401, {"error": "give a user and password (HTTP Basic)"},
                         {"WWW-Authenticate": 'Basic realm="%s", charset="UTF-8"' % PROGRAM})
            return
        user = credentials[0]
        try:
            names = self.server.lister.databases(user)
        except ServiceError as error:
            log("%s: %s" % (user, error))
            self._answer(error.status, {"error": str(error)}, user=user)
            return
        self._answer(200, names, user=user)

    def _answer(self, status: int, document: Any, headers: Optional[Dict[str, str]] = None,
                user: str = "-") -> None:
        body = (json.dumps(document) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        log("%s %s %s %d" % (self.command, self.path.split("?", 1)[0], user, status))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        pass  # one line per answer is written by _answer; http.server's own lines name no user


def _parser(environ: Dict[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m okera_auth.examples.myservice",
        description="The example service of Okera's auth-server tutorial: GET / with HTTP Basic "
                    "credentials answers the databases the user may see, as a JSON list, asking "
                    "the auth server for the user's token and the cluster's REST API for "
                    "%s." % DATABASES_PATH)
    parser.add_argument("--port", type=int, default=int(environ.get("MYSERVICE_PORT") or DEFAULT_PORT),
                        help="port to listen on (MYSERVICE_PORT; default %d)" % DEFAULT_PORT)
    parser.add_argument("--bind", default=environ.get("MYSERVICE_BIND") or DEFAULT_BIND,
                        help="address to listen on (MYSERVICE_BIND; default %s; 0.0.0.0 to be "
                             "reached through a Kubernetes Service)" % DEFAULT_BIND)
    parser.add_argument("--rest-url", default=environ.get("OKERA_REST_URL", ""),
                        help="the Okera cluster's REST API, e.g. https://okera.example.com:8083 "
                             "(OKERA_REST_URL)")
    parser.add_argument("--rest-ca-file", default=environ.get("OKERA_REST_CA_FILE") or None,
                        help="CA certificates to check the REST API's certificate with "
                             "(OKERA_REST_CA_FILE; default: the system's)")
    parser.add_argument("--authserver-url", default=None,
                        help="the auth server (default: OKERA_AUTHSERVER_UNIX_SOCKET or "
                             "OKERA_AUTHSERVER_URL, else http://127.0.0.1:5001)")
    parser.add_argument("--users-file", default=environ.get("MYSERVICE_USERS_FILE") or None,
                        help="htpasswd file of bcrypt hashes (htpasswd -B) to check passwords "
                             "against (MYSERVICE_USERS_FILE); without it any password is taken")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the auth server and the REST API (default 10)")
    return parser


def parse_settings(argv: Optional[Sequence[str]] = None,
                   environ: Optional[Dict[str, str]] = None) -> ServiceSettings:
    args = _parser(dict(os.environ if environ is None else environ)).parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise OkeraAuthError("port %d is not between 0 and 65535" % args.port)
    return ServiceSettings(port=args.port, bind=args.bind, rest_url=args.rest_url,
                           authserver_url=args.authserver_url, users_file=args.users_file,
                           rest_ca_file=args.rest_ca_file, timeout=checked_timeout(args.timeout))


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        settings = parse_settings(argv)
        users = load_users(settings.users_file) if settings.users_file else None
        service = MyService(settings, DatabaseLister(settings), users)
    except OkeraAuthError as error:
        sys.stderr.write("%s: %s\n" % (PROGRAM, error))
        return EXIT_USAGE
    except OSError as error:
        sys.stderr.write("%s: cannot listen on %s port %d: %s\n"
                         % (PROGRAM, settings.bind, settings.port, error.strerror or error))
        return EXIT_USAGE
    host, port = service.server_address[:2]
    log("Listening on http://%s:%d - databases from %s%s"
        % (host, port, service.lister.url,
           "" if users is not None else " (any password is taken: give --users-file to check)"))
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=service.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        service.serve_forever()
    finally:
        service.server_close()
    log("Stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
