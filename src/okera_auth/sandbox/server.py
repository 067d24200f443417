# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP side of the sandbox: Kubernetes REST paths, bearer tokens, watches, Status errors."""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from okera_auth.module_utils.errors import shown
from .controllers import DEFAULT_LOAD_BALANCER_IP, Controllers
from .errors import ApiError, bad_request
from .faults import Fault, FaultInjector
from .kubelet import Kubelet, container_log
from .okera import okera_start_check
from .okera_rest import RestApi, RestHTTPServer, publish_port
from .resources import (
    BY_PATH, GROUP_VERSIONS, PODS, SERVER_VERSION, SERVICE_RESOURCE, WRITE_VERBS, ResourceType, api_group, api_group_list,
    openapi_document, openapi_root, resource_list)
from .store import Store, apply_patch, patch_type_of
from .tables import COLUMNS, table

SUBRESOURCES = {"pods": (None, "status", "log"), "deployments": (None, "status", "scale"),
                "statefulsets": (None, "status", "scale"), "daemonsets": (None, "status"),
                "replicasets": (None, "status"), "services": (None, "status")}
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
MAX_BODY = 3 * 1024 * 1024  # the API server's request limit
DEFAULT_WATCH_SECONDS = 1800


@dataclass(frozen=True)
class User:
    name: str
    can_write: bool


@dataclass(frozen=True)
class Target:
    """What a resource path names: a type, a namespace (or all), an object name, a subresource."""

    rtype: ResourceType
    namespace: Optional[str]
    name: Optional[str]
    subresource: Optional[str]


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def parse_target(group: str, version: str, parts: List[str]) -> Target:
    """Map the path segments after /api/v1 or /apis/<group>/<version> to a Target."""
    def rtype_for(plural: str) -> ResourceType:
        rtype = BY_PATH.get((group, version, plural))
        if rtype is None:
            raise _not_found_path()
        return rtype

    if len(parts) >= 3 and parts[0] == "namespaces" and (group, version, parts[2]) in BY_PATH:
        rtype = rtype_for(parts[2])
        if not rtype.namespaced or len(parts) > 5:
            raise _not_found_path()
        return Target(rtype, parts[1], parts[3] if len(parts) > 3 else None,
                      parts[4] if len(parts) > 4 else None)
    if not parts or len(parts) > 3:
        raise _not_found_path()
    rtype = rtype_for(parts[0])
    if rtype.namespaced and len(parts) > 1:
        raise _not_found_path()
    return Target(rtype, None, parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)


def scale_of(obj: dict) -> dict:
    meta = obj["metadata"]
    selector = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion",
                                                    "creationTimestamp")},
            "spec": {"replicas": obj["spec"].get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join("%s=%s" % item for item in sorted(selector.items()))}}


def _page(items: List[dict], query: Dict[str, str]) -> Tuple[List[dict], dict]:
    """One page of a list for ``limit``/``continue``; the token names the last object given.

    Later pages read the current state (a real server reads the first page's snapshot).
    """
    start = 0
    if query.get("continue"):
        try:
            last = json.loads(base64.urlsafe_b64decode(query["continue"].encode("ascii")))
            start = sum(1 for obj in items if _list_key(obj) <= tuple(last))
        except (ValueError, TypeError, binascii.Error):
            raise bad_request("continue key is not valid: pass the metadata.continue of the "
                              "previous page") from None
    limit = query.get("limit", "")
    if not limit.isdigit() or int(limit) == 0 or len(items) - start <= int(limit):
        return items[start:], {}
    page = items[start:start + int(limit)]
    token = base64.urlsafe_b64encode(json.dumps(_list_key(page[-1])).encode("utf-8")).decode("ascii")
    return page, {"continue": token, "remainingItemCount": len(items) - start - len(page)}


def _list_key(obj: dict) -> Tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _query_flag(query: Dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms per answer
    server_version = "okera-auth-sandbox"
    server: "SandboxHTTPServer"
    timeout = 300  # idle keep-alive connections are closed after this many seconds

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if self.server.log_requests:
            self.server.log("%s %s" % (self.address_string(), format % args))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ---- plumbing -------------------------------------------------------------------------------

    def _send_json(self, code: int, body: dict, headers: Optional[Dict[str, str]] = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _too_large(self) -> ApiError:
        self.close_connection = True  # the rest of the body is not read
        return ApiError(413, "RequestEntityTooLarge", "the request is too large")

    def _read_raw_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(map(len, chunks)) > MAX_BODY:
                    raise self._too_large()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise self._too_large()
        return self.rfile.read(length) if length else b""

    def _parse_body(self, raw: bytes):
        if not raw.strip():
            return None
        if "protobuf" in self.headers.get("Content-Type", ""):
            raise ApiError(415, "UnsupportedMediaType", "the sandbox reads JSON bodies only, not "
                           "protobuf: use kubectl create/apply -f with a manifest instead of a generator")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise bad_request("the request body is not JSON (the sandbox does not read YAML bodies): "
                              "send application/json") from None

    def _authenticate(self) -> User:
        header = self.headers.get("Authorization", "")
        scheme, _space, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            for known, user in self.server.users:
                if hmac.compare_digest(known.encode("utf-8"), token.strip().encode("utf-8")):
                    return user
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        try:
            # Read the body first, whatever happens next, so the connection stays usable.
            raw_body = self._read_raw_body()
            fault = self.server.faults.fault_for(method, url.path) if self.server.faults is not None else None
            if fault is not None and self._inject(fault, method, url.path, query, raw_body):
                return
            self._respond(method, url.path, query, raw_body)
        except ApiError as error:
            self._send_json(error.code, error.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # the client gets a 500, never a traceback
            self.server.log("internal error on %s %s: %s" % (method, url.path, type(error).__name__))
            self._send_json(500, ApiError(500, "InternalError",
                                          "an internal error occurred: %s" % type(error).__name__).status())

    def _respond(self, method: str, path: str, query: Dict[str, str], raw_body: bytes) -> None:
        if path.rstrip("/") in PUBLIC_PATHS:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
            if path.rstrip("/") == "/version":
                self._send_json(200, SERVER_VERSION)
            else:
                self._send_text(200, "ok")
            return
        user = self._authenticate()
        self._route(method, path, query, self._parse_body(raw_body), user)

    def _inject(self, fault: Fault, method: str, path: str, query: Dict[str, str], raw_body: bytes) -> bool:
        """Carry out an injected fault (faults.py); False when the request is then served as usual."""
        if fault.delay and self.server.stopping.wait(fault.delay):
            fault = Fault(fault.rule, 0.0, None, True, False, None)  # the server stops: as if killed
        if fault.error is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            self._send_json(fault.error.code, fault.error.status(), headers)
            return True
        if not fault.drop:
            return False
        if fault.processed:
            # Carried out, its answer lost: written to nowhere, as by a server killed before it replied.
            answer, self.wfile = self.wfile, io.BytesIO()
            try:
                self._respond(method, path, query, raw_body)
            except Exception:  # pylint: disable=broad-except  # the client hears nothing either way
                pass
            finally:
                self.wfile = answer
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    def _send_text(self, code: int, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # ---- routing --------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: Dict[str, str], body, user: User) -> None:
        parts = [part for part in path.split("/") if part]
        if parts[:2] == ["openapi", "v3"] and method == "GET":
            self._send_json(200, self._openapi(parts[2:]))
            return
        if parts[:1] == ["api"]:
            group, version, rest = "", parts[1] if len(parts) > 1 else None, parts[2:]
        elif parts[:1] == ["apis"]:
            group = parts[1] if len(parts) > 1 else None
            version, rest = (parts[2] if len(parts) > 2 else None), parts[3:]
        else:
            raise _not_found_path()
        if method == "GET" and not rest:
            self._send_json(200, self._discovery(parts[0], group, version))
            return
        if (group, version) not in GROUP_VERSIONS:
            raise _not_found_path()
        target = parse_target(group, version, rest)
        if target.subresource not in SUBRESOURCES.get(target.rtype.plural, (None,)):
            raise _not_found_path()
        verb = self._verb(method, target, query)
        if verb in WRITE_VERBS and not user.can_write:
            raise self._forbidden(user, verb, target)
        if target.subresource == "scale":
            self._scale(verb, target, query, body)
            return
        if target.subresource in ("status", "log") and verb != "get":
            raise ApiError(405, "MethodNotAllowed", "the sandbox serves only GET on %s: the simulation "
                           "writes it" % target.subresource)
        if target.subresource == "log":
            self._log(target, query)
            return
        getattr(self, "_" + verb)(target, query, body)

    def _discovery(self, root: str, group: Optional[str], version: Optional[str]) -> dict:
        if root == "api" and version is None:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % self.server.server_address[:2]}]}
        if root == "apis" and group is None:
            return api_group_list()
        if root == "apis" and version is None:
            if group not in {known for known, _version in GROUP_VERSIONS if known}:
                raise _not_found_path()
            return api_group(group)
        if (group, version) not in GROUP_VERSIONS:
            raise _not_found_path()
        return resource_list(group, version)

    @staticmethod
    def _openapi(parts: List[str]) -> dict:
        if not parts:
            return openapi_root()
        for group, version in GROUP_VERSIONS:
            if parts == [part for part in ("apis" if group else "api", group, version) if part]:
                return openapi_document(group, version)
        raise _not_found_path()

    @staticmethod
    def _verb(method: str, target: Target, query: Dict[str, str]) -> str:
        collection = target.name is None
        verbs = {("GET", True): "watch" if _query_flag(query, "watch") else "list",
                 ("GET", False): "get", ("POST", True): "create", ("PUT", False): "update",
                 ("PATCH", False): "patch", ("DELETE", False): "delete",
                 ("DELETE", True): "deletecollection"}
        verb = verbs.get((method, collection))
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                           "requested resource")
        if collection and target.rtype.namespaced and target.namespace is None and verb not in ("list", "watch"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                           "requested resource")
        return verb

    @staticmethod
    def _forbidden(user: User, verb: str, target: Target) -> ApiError:
        rtype = target.rtype
        subject = '%s "%s"' % (rtype.plural, target.name) if target.name else rtype.plural
        where = ' in the namespace "%s"' % target.namespace if target.namespace else ""
        return ApiError(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API '
                        'group "%s"%s' % (subject, user.name, verb, rtype.plural, rtype.group, where),
                        {"name": target.name or "", "group": rtype.group, "kind": rtype.plural})

    @staticmethod
    def _dry_run(query: Dict[str, str], options: Optional[dict] = None) -> bool:
        """``dryRun=All`` in the query, or in the DeleteOptions body (where kubectl puts it)."""
        values = [query["dryRun"]] if query.get("dryRun") else []
        values += (options or {}).get("dryRun") or []
        if any(value != "All" for value in values):
            raise bad_request("dryRun: Unsupported value: %s: supported values: \"All\"" % shown(values))
        return bool(values)

    def _table_wanted(self) -> bool:
        accept = self.headers.get("Accept", "")
        first = accept.split(",")[0]
        return "as=Table" in first and "g=meta.k8s.io" in first

    # ---- verbs ----------------------------------------------------------------------------------

    def _scale(self, verb: str, target: Target, query: Dict[str, str], body) -> None:
        """The autoscaling/v1 Scale of a Deployment or StatefulSet (kubectl scale)."""
        store, namespace = self.server.store, target.namespace or ""
        if verb not in ("get", "update", "patch"):
            raise ApiError(405, "MethodNotAllowed", "the scale subresource takes get, update and patch")
        with store.lock:
            obj = store.get(target.rtype, namespace, target.name)
            scale = scale_of(obj)
            if verb == "get":
                self._send_json(200, scale)
                return
            if verb == "update":
                wanted = body
            else:
                content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
                wanted = apply_patch(patch_type_of(content_type), scale, body)
            replicas = ((wanted or {}).get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", 'Scale.autoscaling "%s" is invalid: spec.replicas: Invalid '
                               "value: must be greater than or equal to 0" % target.name)
            precondition = ((wanted or {}).get("metadata") or {}).get("resourceVersion")
            obj = store.patch(target.rtype, namespace, target.name, "application/merge-patch+json",
                              {"metadata": {"resourceVersion": precondition}, "spec": {"replicas": replicas}},
                              self._dry_run(query))
        self._send_json(200, scale_of(obj))

    def _log(self, target: Target, query: Dict[str, str]) -> None:
        """What the simulated container logged: its starts, token checks and failures."""
        store = self.server.store
        pod = store.get(PODS, target.namespace or "", target.name)
        names = [container["name"] for container in pod["spec"]["containers"]]
        container = query.get("container") or (names[0] if len(names) == 1 else None)
        if container not in names:
            raise bad_request("a container name must be specified for pod %s, choose one of: [%s]"
                              % (target.name, " ".join(names)) if container is None else
                              "container %s is not valid for pod %s" % (container, target.name))
        with store.lock:
            lines = container_log(store, pod, container)
        tail = query.get("tailLines", "")
        if tail.isdigit():
            lines = lines[len(lines) - int(tail):] if int(tail) else []
        self._send_text(200, "".join(line + "\n" for line in lines))

    def _get(self, target: Target, query: Dict[str, str], body) -> None:
        store = self.server.store
        obj = store.get(target.rtype, target.namespace or "", target.name)
        if self._table_wanted() and target.rtype.plural in COLUMNS:
            self._send_json(200, table(target.rtype, [obj], store.revision,
                                       query.get("includeObject", "Metadata"), store.clock()))
        else:
            self._send_json(200, obj)

    def _list(self, target: Target, query: Dict[str, str], body) -> None:
        store = self.server.store
        items, revision = store.list(target.rtype, target.namespace, query.get("labelSelector"),
                                     query.get("fieldSelector"))
        items, page = _page(items, query)
        if self._table_wanted() and target.rtype.plural in COLUMNS:
            answer = table(target.rtype, items, revision, query.get("includeObject", "Metadata"), store.clock())
        else:
            answer = {"kind": target.rtype.kind + "List", "apiVersion": target.rtype.api_version,
                      "metadata": {"resourceVersion": str(revision)}, "items": items}
        answer["metadata"].update(page)
        self._send_json(200, answer)

    def _create(self, target: Target, query: Dict[str, str], body) -> None:
        if target.namespace is None and target.rtype.namespaced:
            raise _not_found_path()
        obj = self.server.store.create(target.rtype, target.namespace or "", body, self._dry_run(query))
        self._send_json(201, obj)

    def _update(self, target: Target, query: Dict[str, str], body) -> None:
        obj = self.server.store.replace(target.rtype, target.namespace or "", target.name, body,
                                        self._dry_run(query))
        self._send_json(200, obj)

    def _patch(self, target: Target, query: Dict[str, str], body) -> None:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        if body is None:
            raise bad_request("the patch body is empty")
        store = self.server.store
        existed = store.find(target.rtype, target.namespace or "", target.name) is not None
        obj = store.patch(target.rtype, target.namespace or "", target.name, content_type, body,
                          self._dry_run(query), query.get("fieldManager"))
        self._send_json(200 if existed else 201, obj)

    def _delete(self, target: Target, query: Dict[str, str], body) -> None:
        options = dict(body or {})
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        deleted = self.server.store.delete(target.rtype, target.namespace or "", target.name, options,
                                           self._dry_run(query, options))
        if target.rtype in (PODS, SERVICE_RESOURCE):
            # Pods (graceful deletion) and Services (ReturnDeletedObject) answer with the object.
            self._send_json(200, deleted)
            return
        details = {"name": target.name, "kind": target.rtype.plural, "uid": deleted["metadata"]["uid"]}
        if target.rtype.group:
            details["group"] = target.rtype.group
        self._send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "details": details})

    def _deletecollection(self, target: Target, query: Dict[str, str], body) -> None:
        store, dry_run = self.server.store, self._dry_run(query, body)
        with store.batch():
            items, _revision = store.list(target.rtype, target.namespace,
                                          query.get("labelSelector"), query.get("fieldSelector"))
            deleted = [store.delete(target.rtype, target.namespace, obj["metadata"]["name"], body, dry_run)
                       for obj in items]
            revision = store.revision
        self._send_json(200, {"kind": target.rtype.kind + "List", "apiVersion": target.rtype.api_version,
                              "metadata": {"resourceVersion": str(revision)}, "items": deleted})

    def _watch(self, target: Target, query: Dict[str, str], body) -> None:
        store = self.server.store
        matches = store.matcher(target.rtype, query.get("labelSelector"), query.get("fieldSelector"))
        as_table = self._table_wanted() and target.rtype.plural in COLUMNS
        try:
            timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
            requested = query.get("resourceVersion", "")
            since = int(requested) if requested not in ("", "0") else None
        except ValueError:
            raise bad_request("resourceVersion and timeoutSeconds must be numbers") from None
        initial_events = _query_flag(query, "sendInitialEvents")
        with store.lock:
            initial = []
            if since is None or initial_events:
                initial = [("ADDED", obj) for obj in store.objects(target.rtype, target.namespace)
                           if matches(obj)]
                since = store.revision
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(event_type: str, obj: dict) -> None:
            if as_table:
                obj = table(target.rtype, [obj], int(obj["metadata"]["resourceVersion"]), "Metadata",
                            store.clock())
            line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n"
            data = line.encode("utf-8")
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        for event_type, obj in initial:
            send(event_type, obj)
        if initial_events:
            send("BOOKMARK", {"kind": target.rtype.kind, "apiVersion": target.rtype.api_version,
                              "metadata": {"resourceVersion": str(since),
                                           "annotations": {"k8s.io/initial-events-end": "true"}}})
        deadline = time.monotonic() + timeout
        while not self.server.stopping.is_set() and time.monotonic() < deadline:
            with store.changed:
                events = store.events_after(since)
                if events == []:
                    store.changed.wait(min(1.0, max(deadline - time.monotonic(), 0)))
                    continue
            if events is None:
                send("ERROR", ApiError(410, "Expired", "too old resource version: %d (%d)"
                                       % (since, store.revision)).status())
                break
            for event in events:
                since = event.revision
                if event.rtype is not target.rtype or target.namespace not in (
                        None, event.obj["metadata"].get("namespace")):
                    continue
                event_type = event.seen_through(matches)
                if event_type is not None:
                    send(event_type, event.obj)
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: Tuple[str, int], store: Store, users: List[Tuple[str, User]],
                 log: Optional[Callable[[str], None]] = None, log_requests: bool = False,
                 faults: Optional[FaultInjector] = None) -> None:
        super().__init__(address, ApiHandler)
        self.store = store
        self.faults = faults
        self.users = users
        self.log = log or (lambda line: None)
        self.log_requests = log is not None and log_requests
        self.stopping = threading.Event()

    def handle_error(self, request, client_address) -> None:
        # Failed TLS handshakes and dropped connections are the client's business: one line, no trace.
        self.log("connection from %s:%d failed" % client_address[:2])


class RestListenError(OSError):
    """The REST stand-in cannot listen on its port (the API server's port was free)."""


class SandboxServer:
    """The API server, Okera's REST stand-in, and the simulated controllers and node, in threads."""

    def __init__(self, store: Store, users: List[Tuple[str, User]], host: str = "127.0.0.1",
                 port: int = 0, ssl_context: Optional[ssl.SSLContext] = None,
                 start_delay: float = 0.5, crash_backoff: float = 2.0, tick: float = 0.1,
                 log: Optional[Callable[[str], None]] = None, log_requests: bool = False,
                 namespace: str = "default", rest_port: int = 0, runtime=None,
                 faults: Optional[FaultInjector] = None, load_balancer_ip: str = DEFAULT_LOAD_BALANCER_IP,
                 rest_host: Optional[str] = None) -> None:
        """``log`` takes errors (and every request with ``log_requests``); None discards them.

        ``namespace`` is the Okera cluster's, whose Service cdas-rest-server fronts the REST
        listener (plain HTTP on ``rest_host``:``rest_port``, 0 for a free port; ``rest_host``
        defaults to ``load_balancer_ip``, the address every LoadBalancer Service's ingress
        reports, and may be 0.0.0.0 for every address of the host). ``runtime`` runs
        pods for real (``podman.PodmanPods``, ``--podman``); without one every pod is simulated.
        ``faults`` injects the faults of a faults.json into the API server's answers (not the REST API's).
        """
        self.store = store
        self.namespace = namespace
        self.httpd = SandboxHTTPServer((host, port), store, users, log, log_requests, faults)
        try:
            self.rest = RestHTTPServer((rest_host or load_balancer_ip, rest_port), RestApi(store, namespace), log,
                                       log_requests)
        except OSError as error:
            self.httpd.server_close()
            raise RestListenError(error.errno, error.strerror) from None
        if ssl_context is not None:
            # The handshake happens in the request thread, so a slow client never blocks accept().
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True,
                                                        do_handshake_on_connect=False)
        self.scheme = "https" if ssl_context is not None else "http"
        self.load_balancer_ip = load_balancer_ip
        self.controllers = Controllers(store, load_balancer_ip)
        self.kubelet = Kubelet(store, okera_start_check, start_delay, crash_backoff, runtime)
        self.tick = tick
        self.kubeconfig_path: Optional[str] = None  # set by whoever writes one for this server
        self._threads: List[threading.Thread] = []

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    @property
    def rest_url(self) -> str:
        """Where Okera's REST stand-in answers: the load balancer of Service cdas-rest-server."""
        return "http://%s:%d" % (self.load_balancer_ip, self.rest.port)

    def step(self) -> None:
        """One pass of the controllers and the node."""
        with self.store.batch():
            now = self.store.clock()
            self.controllers.sync(now)
            self.kubelet.sync(now)
            self.controllers.sync(now)

    def _simulate(self) -> None:
        while not self.httpd.stopping.wait(self.tick):
            try:
                self.step()
            except ApiError as error:
                self.httpd.log("simulation: %s" % error.message)

    def _serve(self) -> None:
        self.httpd.serve_forever(poll_interval=0.1)  # so that stop() returns quickly

    def start(self) -> None:
        if not publish_port(self.store, self.namespace, self.rest.port):
            self.httpd.log("Service %s/cdas-rest-server does not exist: the Okera REST API at %s cannot be "
                           "discovered (init the sandbox again)" % (self.namespace, self.rest_url))
        self.rest.start()
        if self.kubelet.runtime is not None:
            self.kubelet.runtime.start()
        for target in (self._serve, self._simulate):
            thread = threading.Thread(target=target, name="sandbox%s" % target.__name__, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.httpd.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.rest.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.kubelet.runtime is not None:
            self.kubelet.runtime.stop()  # after the simulation: it removes the pods it started
