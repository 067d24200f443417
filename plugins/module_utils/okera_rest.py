# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does the cluster work with this token? Asked of Okera's REST API, as a user of it would.

Three requests, in Okera's own terms: ``GET /api/info`` (no token; the cluster must report
``is_jwt_enabled``), ``GET /api/get-user`` and ``GET /api/databases`` with
``Authorization: Bearer <token>``. Where the REST API is comes from the caller, or from the
load balancer of the Service in front of it (``status.loadBalancer.ingress`` and the Service
port): the API server's service proxy is not used, since a real one drops the bearer header.

While the cluster restarts, connection failures and 502/503/504 answers are retried until a
deadline; any other answer is final. Messages never hold the token.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from ._http import has_userinfo, http_open, without_userinfo
from ._polling import pauses
from .errors import OkeraAuthError, shown

RETRIED_STATUSES = (502, 503, 504)
MAX_ANSWER = 4 * 1024 * 1024
_SHOWN_LIMIT = 300
_CREDENTIALS = re.compile(r"(Bearer|Basic)\s+\S+", re.IGNORECASE)


class RestCheckError(OkeraAuthError):
    """The REST API cannot be found, reached, or does not accept the token; one line."""


@dataclass(frozen=True)
class RestCheck:
    """What the REST API answered (never the token)."""

    url: str
    version: Optional[str]
    is_jwt_enabled: bool
    user: str
    databases: List[str]
    attempts: int
    elapsed: float

    def as_dict(self) -> dict:
        return {"url": self.url, "version": self.version, "is_jwt_enabled": self.is_jwt_enabled,
                "user": self.user, "databases": list(self.databases), "database_count": len(self.databases),
                "attempts": self.attempts, "elapsed": self.elapsed}


@dataclass
class _Answer:
    status: Optional[int]  # None when nothing was answered (connection refused, timeout, ...)
    body: Any = None
    problem: Optional[str] = None  # why there is no usable answer
    retry: bool = False
    notes: List[str] = field(default_factory=list)


def base_url(url: str) -> str:
    """``url`` without a trailing slash; RestCheckError unless it is http(s)://host[:port][/path]."""
    text = str(url or "").strip()
    if has_userinfo(text):
        raise RestCheckError("the URL holds a user name or password: give it without them; the check sends the token")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise RestCheckError("%s is not a base URL of the Okera REST API: give e.g. https://okera.example.com:8083"
                             % shown(text))
    try:
        parts.port
    except ValueError:
        raise RestCheckError("%s has an invalid port" % shown(text)) from None
    return text.rstrip("/")


def service_url(service: Mapping[str, Any], scheme: str = "http", port: Union[str, int, None] = None) -> str:
    """The REST API's URL from a Service object (as the API server returns it), via its load balancer.

    ``port`` picks the Service port by name or number; the first one when unset.
    """
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    where = "Service %s/%s" % (meta.get("namespace", "?"), meta.get("name", "?"))
    kind = spec.get("type") or "ClusterIP"
    if kind != "LoadBalancer":
        raise RestCheckError("%s is of type %s, not LoadBalancer: it has no address reachable from here"
                             % (where, kind))
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    hosts = [entry.get("ip") or entry.get("hostname") for entry in ingress if isinstance(entry, dict)]
    hosts = [host for host in hosts if host]
    if not hosts:
        raise RestCheckError("%s has no load balancer ingress yet (status.loadBalancer.ingress is empty)" % where)
    ports = [entry for entry in spec.get("ports") or [] if isinstance(entry, dict) and entry.get("port")]
    if not ports:
        raise RestCheckError("%s has no ports" % where)
    chosen = ports[0]
    if port is not None and str(port).strip():
        wanted = str(port).strip()
        matches = [entry for entry in ports if str(entry.get("name")) == wanted or str(entry["port"]) == wanted]
        if not matches:
            raise RestCheckError("%s has no port named or numbered %s (it has: %s)" % (
                where, wanted, ", ".join("%s/%s" % (entry.get("name") or "-", entry["port"]) for entry in ports)))
        chosen = matches[0]
    host = hosts[0]
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host  # IPv6
    if scheme not in ("http", "https"):
        raise RestCheckError("scheme must be http or https, not %s" % shown(scheme))
    return "%s://%s:%d" % (scheme, host, int(chosen["port"]))


def find_rest_api(url: Optional[str], read_service: Callable[[str, str], Mapping[str, Any]], namespace: str,
                  name: str, scheme: str = "http", port: Union[str, int, None] = None) -> Tuple[str, str]:
    """Where the REST API is, and where that came from: the given ``url``, else the load balancer of
    Service ``namespace``/``name``, read with ``read_service(namespace, name)`` only then.
    OkeraAuthError (one line) when neither gives a URL."""
    if url:
        return base_url(url), "given"
    return service_url(read_service(namespace, name), scheme, port), "Service %s/%s" % (namespace, name)


def ssl_context(validate_certs: bool = True, ca_cert: Optional[str] = None) -> ssl.SSLContext:
    """The TLS settings for an https URL: the system's CAs, or ``ca_cert``, or no validation."""
    if not validate_certs:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_cert) if ca_cert else ssl.create_default_context()
    except (OSError, ssl.SSLError) as error:
        raise RestCheckError("cannot load the CA certificate(s) %s: %s" % (ca_cert, getattr(error, "strerror", None)
                                                                           or error)) from None


def _answer_excerpt(text: Any, secret: Optional[str] = None) -> str:
    """An excerpt of what the server or the connection said, for a message: one line, the token
    and credentials (of URLs too) replaced, cut at _SHOWN_LIMIT (values a user gave are quoted with shown())."""
    text = without_userinfo(" ".join(str(text).split()))
    if secret:
        text = text.replace(secret, "<token>")
    text = _CREDENTIALS.sub(r"\1 <redacted>", text)
    return text if len(text) <= _SHOWN_LIMIT else text[:_SHOWN_LIMIT - 3] + "..."


def _error_text(body: Any, raw: str) -> str:
    """The message of an error answer: Okera's JSON ``message`` (or ``error``), else the text."""
    if isinstance(body, dict):
        for name in ("message", "error", "msg", "detail"):
            if isinstance(body.get(name), str) and body[name].strip():
                return body[name]
    return raw or "no message"


Opener = Callable[[urllib.request.Request, float], Tuple[int, bytes]]


def _http_opener(context: Optional[ssl.SSLContext]) -> Opener:
    def open_(request: urllib.request.Request, timeout: float) -> Tuple[int, bytes]:
        try:
            with http_open(request.get_method(), request.full_url, dict(request.header_items()), timeout,
                           context=context) as response:
                return response.status, response.read(MAX_ANSWER)
        except urllib.error.HTTPError as error:
            return error.code, error.read(MAX_ANSWER)
    return open_


def _ask(opener: Opener, url: str, path: str, token: Optional[str], timeout: float) -> _Answer:
    request = urllib.request.Request(url + path, headers={"Accept": "application/json", "User-Agent": "okera.auth"})
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    try:
        status, raw_bytes = opener(request, timeout)
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
            return _Answer(None, problem="the TLS handshake failed (%s): give the CA in ca_cert, or set "
                                         "validate_certs false for a test cluster" % _answer_excerpt(reason, token))
        if isinstance(reason, socket.gaierror):
            return _Answer(None, problem="cannot resolve the host of %s" % url)
        return _Answer(None, problem="cannot connect (%s)" % _answer_excerpt(reason, token), retry=True)
    except (socket.timeout, TimeoutError):
        return _Answer(None, problem="no answer within %g s" % timeout, retry=True)
    except (ConnectionError, OSError) as error:
        return _Answer(None, problem="the connection failed (%s)" % _answer_excerpt(error, token), retry=True)
    raw = raw_bytes.decode("utf-8", "replace")
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = None
    if not 200 <= status < 300:
        return _Answer(status, body, "%s answered %d: %s" % (path, status, _answer_excerpt(_error_text(body, raw), token)),
                       retry=status in RETRIED_STATUSES)
    if body is None:
        return _Answer(status, None, "%s answered %d without JSON" % (path, status))
    return _Answer(status, body)


def _databases(body: Any) -> Optional[List[str]]:
    """The database names of an answer of /api/databases: a list, or an object holding one."""
    if isinstance(body, dict):
        body = body.get("databases")
    if isinstance(body, list):
        return [str(item.get("name") if isinstance(item, dict) else item) for item in body]
    return None


def _attempt(opener: Opener, url: str, token: str, subject: Optional[str],
             timeout: float) -> Tuple[Optional[RestCheck], _Answer]:
    info = _ask(opener, url, "/api/info", None, timeout)
    if info.problem:
        return None, info
    if not isinstance(info.body, dict):
        return None, _Answer(info.status, info.body, "/api/info did not answer a JSON object")
    if info.body.get("is_jwt_enabled") is False:
        return None, _Answer(info.status, info.body, "the cluster reports is_jwt_enabled false: it does not "
                                                     "accept JWTs, so it cannot use this token")
    user = _ask(opener, url, "/api/get-user", token, timeout)
    if user.problem:
        return None, user
    name = user.body.get("user") if isinstance(user.body, dict) else None
    if not isinstance(name, str):
        return None, _Answer(user.status, user.body, "/api/get-user did not answer {\"user\": ...}")
    if subject and name != subject:
        return None, _Answer(user.status, user.body, "/api/get-user answered the user %s, not %s"
                                                     % (shown(name), shown(subject)))
    listing = _ask(opener, url, "/api/databases", token, timeout)
    if listing.problem:
        return None, listing
    names = _databases(listing.body)
    if names is None:
        return None, _Answer(listing.status, listing.body, "/api/databases did not answer a list of databases")
    version = info.body.get("version")
    return RestCheck(url, None if version is None else str(version), bool(info.body.get("is_jwt_enabled", True)),
                     name, names, 0, 0.0), listing


def check_cluster(url: str, token: str, subject: Optional[str] = None, timeout: float = 10.0,
                  wait_timeout: float = 30.0, sleep: float = 2.0, context: Optional[ssl.SSLContext] = None,
                  opener: Optional[Opener] = None, clock: Callable[[], float] = time.monotonic,
                  sleeper: Callable[[float], None] = time.sleep) -> RestCheck:
    """Ask the REST API at ``url`` who ``token`` is and which databases it sees; RestCheckError if it fails.

    Connection failures and 502/503/504 are retried for ``wait_timeout`` seconds, at most ``sleep``
    seconds apart (sooner at first, see _polling); the error then names the last problem and how long it was tried.
    """
    url = base_url(url)
    if not token or not str(token).strip():
        raise RestCheckError("no token to check with")
    token = str(token).strip()
    opener = opener or _http_opener(context)
    started = clock()
    deadline = started + max(0.0, wait_timeout)
    pause = pauses(sleep, deadline, clock)
    attempts = 0
    while True:
        attempts += 1
        result, answer = _attempt(opener, url, token, subject, timeout)
        if result is not None:
            return RestCheck(result.url, result.version, result.is_jwt_enabled, result.user, result.databases,
                             attempts, round(clock() - started, 1))
        if not answer.retry or clock() >= deadline:
            tried = (" (%d attempts in %.0f s)" % (attempts, clock() - started)) if attempts > 1 else ""
            raise RestCheckError("the Okera REST API at %s: %s%s" % (url, answer.problem, tried))
        sleeper(next(pause))
