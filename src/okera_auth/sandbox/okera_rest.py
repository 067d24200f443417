# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The part of Okera's REST API that a check of the cluster needs, served from the simulated pods.

Behind Service ``cdas-rest-server`` (type LoadBalancer, ingress the sandbox's load balancer
address, 127.0.0.1 unless ``--load-balancer-ip`` says otherwise, port = the port this listener
bound) the sandbox answers, in plain HTTP, with Okera's paths and shapes:

- ``GET /api/info`` (no token): ``{"version": ..., "is_jwt_enabled": true}``
- ``GET /api/get-user``: ``{"user": <sub>}`` of the bearer token
- ``GET`` / ``POST /api/databases``: the list of database names the user may see

Every answer comes "from" a ready pod behind the Service, chosen in turn: 503 when there is
none (a pod is ready only if it started with a system token the cluster accepts). A bearer
token (``Authorization: Bearer <token>``) is verified with the keys and algorithm that pod
started with (``JWT_PUBLIC_KEY`` / ``JWT_ALGORITHM``), by ``tokens.verify`` as the pods'
start check does; a token that does not verify is 401. Errors are JSON
``{"code": <status>, "message": ...}``; no answer or log line holds a token.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from okera_auth.module_utils.errors import OkeraAuthError
from okera_auth.module_utils.keys import load_public_keys
from okera_auth.module_utils.tokens import verify
from .kubelet import is_running_and_ready, last_failure, running_containers
from .okera import OKERA_VERSION, REST_SERVICE, fault_time, read_faults
from .resources import PODS, SERVICE_RESOURCE
from .store import Store

# What an administrator sees; other users see the databases without the system one.
DATABASES = ("default", "okera_sample", "okera_system")
USER_DATABASES = ("default", "okera_sample")
ROUTES = {"/api/info": ("GET",), "/api/get-user": ("GET",), "/api/databases": ("GET", "POST")}
MAX_BODY = 1024 * 1024
_KEY_CACHE_SIZE = 16


@dataclass(frozen=True)
class RestAnswer:
    code: int
    body: object


def _error(code: int, message: str) -> RestAnswer:
    return RestAnswer(code, {"code": code, "message": message})


class RestApi:
    """Answers REST requests from the state of the cluster in ``store`` (no sockets here)."""

    def __init__(self, store: Store, namespace: str, service: str = REST_SERVICE) -> None:
        self.store = store
        self.namespace = namespace
        self.service = service
        self._turn = itertools.count()
        self._keys: Dict[str, list] = {}

    def _endpoints(self) -> Tuple[List[dict], Optional[str]]:
        """(details of each ready pod behind the Service, why there is none)."""
        with self.store.lock:
            service = self.store.find(SERVICE_RESOURCE, self.namespace, self.service)
            if service is None:
                return [], "Service %s/%s does not exist" % (self.namespace, self.service)
            selector = service["spec"].get("selector") or {}
            pods = [pod for pod in self.store.objects(PODS, self.namespace) if selector and all(
                (pod["metadata"].get("labels") or {}).get(key) == value for key, value in selector.items())]
            endpoints = []
            for pod in pods:
                if not is_running_and_ready(pod):
                    continue
                details = [state["details"] for state in running_containers(self.store, pod) if state.get("details")]
                if details:
                    endpoints.append(details[0])
            if endpoints:
                return endpoints, None
            reasons = [failure for failure in (last_failure(self.store, pod) for pod in pods) if failure]
            why = "no %s pod is ready (%d pod(s)%s)" % (
                self.service, len(pods), ": %s" % reasons[0] if reasons else "")
            return [], why

    def _public_keys(self, text: str) -> list:
        if text not in self._keys:
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            self._keys[text] = load_public_keys(text)
        return self._keys[text]

    def _authenticate(self, authorization: str, details: dict) -> Tuple[Optional[dict], Optional[RestAnswer]]:
        """(claims, None) of a token that verifies with the pod's keys, else (None, 401)."""
        scheme, _space, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, _error(401, "Authentication required: send the header 'Authorization: Bearer <token>'")
        try:
            keys = self._public_keys(details.get("jwtPublicKey") or "")
            result = verify(token.strip(), keys, [details.get("jwtAlgorithm") or "RS512"])
        except OkeraAuthError as error:
            return None, _error(401, "The token could not be authenticated: %s" % error)
        if not result.valid:
            return None, _error(401, "The token could not be authenticated: %s" % result.reason)
        subject = result.claims.get("sub")
        if not isinstance(subject, str) or not subject:
            return None, _error(401, "The token could not be authenticated: it has no 'sub' claim")
        limit = fault_time(read_faults(self.store, self.namespace), "restRejectsTokensIssuedAfter")
        if limit is not None and result.claims.get("iat", 0) > limit:
            return None, _error(401, "The token could not be authenticated: it was refused "
                                     "(sandbox fault restRejectsTokensIssuedAfter)")
        return result.claims, None

    def answer(self, method: str, path: str, authorization: str = "") -> RestAnswer:
        route = urlsplit(path).path.rstrip("/") or "/"
        if route not in ROUTES:
            return _error(404, "No such endpoint: %s (this stand-in serves %s)" % (route, ", ".join(sorted(ROUTES))))
        if method not in ROUTES[route]:
            return _error(405, "%s does not take %s" % (route, method))
        endpoints, why = self._endpoints()
        if not endpoints:
            return _error(503, "The Okera REST service is unavailable: %s" % why)
        details = endpoints[next(self._turn) % len(endpoints)]
        if route == "/api/info":
            return RestAnswer(200, {"version": OKERA_VERSION, "is_jwt_enabled": bool(details.get("jwtPublicKey"))})
        claims, refusal = self._authenticate(authorization, details)
        if refusal is not None:
            return refusal
        if route == "/api/get-user":
            return RestAnswer(200, {"user": claims["sub"]})
        admins = details.get("catalogAdmins")
        groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
        is_admin = admins is None or bool(set(groups) & set(admins))
        return RestAnswer(200, list(DATABASES if is_admin else USER_DATABASES))


def publish_port(store: Store, namespace: str, port: int, service: str = REST_SERVICE) -> bool:
    """Write ``port`` as the first port of the Service (what its load balancer listens on).

    False when the Service does not exist (a sandbox made by an older version: init again).
    """
    with store.batch():
        obj = store.find(SERVICE_RESOURCE, namespace, service)
        if obj is None or not obj["spec"].get("ports"):
            return False
        ports = copy.deepcopy(obj["spec"]["ports"])
        if ports[0].get("port") != port:
            ports[0]["port"] = port
            store.patch(SERVICE_RESOURCE, namespace, service, "application/merge-patch+json",
                        {"spec": {"ports": ports}})
    return True


class RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "okera-auth-sandbox-rest"
    server: "RestHTTPServer"
    timeout = 60

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if self.server.log_requests:
            self.server.log("rest: %s %s" % (self.address_string(), format % args))

    def _handle(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True
            self._send(_error(413, "The request body is too large"))
            return
        if int(length):
            self.rfile.read(int(length))  # POST /api/databases may carry filters: not modelled
        try:
            answer = self.server.api.answer(self.command, self.path, self.headers.get("Authorization", ""))
        except Exception as error:  # the client gets a 500, never a traceback
            self.server.log("rest: internal error on %s: %s" % (self.command, type(error).__name__))
            answer = _error(500, "Internal error: %s" % type(error).__name__)
        self._send(answer)

    def _send(self, answer: RestAnswer) -> None:
        data = json.dumps(answer.body, separators=(",", ":")).encode("utf-8")
        try:
            self.send_response(answer.code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class RestHTTPServer(ThreadingHTTPServer):
    """The REST listener (plain HTTP), run in its own thread by the sandbox server."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: Tuple[str, int], api: RestApi, log: Optional[Callable[[str], None]] = None,
                 log_requests: bool = False) -> None:
        super().__init__(address, RestHandler)
        self.api = api
        self.log = log or (lambda line: None)
        self.log_requests = log is not None and log_requests
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def handle_error(self, request, client_address) -> None:
        self.log("rest: connection from %s:%d failed" % client_address[:2])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sandbox-okera-rest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()
