# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cluster access shared by every Kubernetes module of the collection.

One argument spec (the options of kubernetes.core, so users need not learn new ones), one way to
build an API client from it, and one translation of client failures into one-line messages a
user can act on. Credentials never appear in a message.
"""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import time
from typing import Any, Callable, Dict, Mapping, Optional
from urllib.parse import quote, urlencode

from .._http import without_userinfo
from .auth import ClusterError, describe_target, resolve_auth_params

try:
    import urllib3
    import yaml
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR: Optional[str] = None
except ImportError as exc:  # reported by the modules through missing_required_lib
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = str(exc)

    class ApiException(Exception):  # type: ignore[no-redef]
        """Stands in so that `except ApiException` stays valid without the library."""

        status = 0

    class ConfigException(Exception):  # type: ignore[no-redef]
        """Stands in so that `except ConfigException` stays valid without the library."""


# Seconds for one API request; a cluster that does not answer within it is reported, not waited on.
# OKERA_AUTH_K8S_REQUEST_TIMEOUT (seconds, where the modules run) sets another.
REQUEST_TIMEOUT = 30
REQUEST_TIMEOUT_ENV = "OKERA_AUTH_K8S_REQUEST_TIMEOUT"

# Answers asked again, as client-go does: 429 (the request was not carried out; any method) and, for
# reads only, 500/502/503/504 (an API server restarting or overloaded). Retry-After is honoured up to
# RETRY_AFTER_LIMIT seconds; without one the waits are RETRY_SLEEPS.
RETRIED_STATUSES = (429, 500, 502, 503, 504)
RETRY_SLEEPS = (0.5, 1.0, 2.0)
RETRY_AFTER_LIMIT = 5.0

# Where the kubelet puts a pod's service-account token and cluster CA. OKERA_AUTH_SERVICE_ACCOUNT_DIR
# names another directory with the same two files (token, ca.crt): a pod's view laid out elsewhere,
# as the tests of the in-cluster path do.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_DIR_ENV = "OKERA_AUTH_SERVICE_ACCOUNT_DIR"

_ENTRY_NAME = re.compile(r"\[name=.*?\]|(?<=with name ).*?(?= in )")
_SECRET_PATTERN = re.compile(r"(Bearer|Basic)\s+\S+", re.IGNORECASE)


def _default_kubeconfig(environ: Mapping[str, str]) -> Optional[str]:
    for candidate in environ.get("KUBECONFIG", "").split(os.pathsep) + [os.path.expanduser("~/.kube/config")]:
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


# The largest kubeconfig file read; kubectl's, even with hundreds of clusters, are far smaller.
KUBECONFIG_LIMIT = 4 * 2**20
KUBECONFIG_SHAPE = "a mapping with clusters, contexts and users"
_KUBECONFIG_LISTS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))


def _read_kubeconfig(path: str) -> Dict[str, Any]:
    """The kubeconfig file at ``path`` parsed; ClusterError (one line, none of its content) otherwise."""
    shown = "kubeconfig %s" % _one_line(path)
    if os.path.isdir(path):
        raise ClusterError("%s is a directory: set kubeconfig to a kubeconfig file" % shown)
    if not os.path.exists(path):
        raise ClusterError("%s does not exist: set kubeconfig to a readable file" % shown)
    if not os.path.isfile(path):
        raise ClusterError("%s is not a regular file (a device, FIFO or socket): set kubeconfig to a kubeconfig file" % shown)
    try:
        with open(path, "rb") as stream:
            data = stream.read(KUBECONFIG_LIMIT + 1)
    except OSError as exc:
        raise ClusterError("%s cannot be read (%s): set kubeconfig to a readable file"
                           % (shown, exc.strerror or type(exc).__name__)) from None
    if len(data) > KUBECONFIG_LIMIT:
        raise ClusterError("%s is larger than %d MiB, too large for a kubeconfig: set kubeconfig to a kubeconfig file"
                           % (shown, KUBECONFIG_LIMIT // 2**20))
    try:
        config = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ClusterError("%s is not valid YAML (%s): fix it or set kubeconfig to another file"
                           % (shown, _yaml_problem_place(exc, data))) from None
    except (ValueError, RecursionError):  # a date that does not exist (2024-02-30), nesting beyond the parser's depth
        raise ClusterError("%s is not valid YAML: fix it or set kubeconfig to another file" % shown) from None
    return _checked_kubeconfig(config, shown)


def _unnamed(match: Any) -> str:
    return "" if match.group(0).startswith("[") else "<name>"


def _yaml_problem_place(exc: Exception, data: bytes) -> str:
    """Where the parser stopped, as "line N" (never the text there, which may be a credential)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return "line %d" % (mark.line + 1)
    position = getattr(exc, "position", None)  # a ReaderError: bytes that are not UTF-8/16 text
    if isinstance(position, int):
        return "line %d, not UTF-8 text" % (data[:position].count(b"\n") + 1)
    return "unreadable"


def _checked_kubeconfig(config: Any, shown: str) -> Dict[str, Any]:
    """``config`` if it has the shape of a kubeconfig, else ClusterError naming the shape."""
    if _is_kubeconfig(config):
        return config
    raise ClusterError("%s is not a kubeconfig (%s): give a kubeconfig such as kubectl writes"
                       % (shown, KUBECONFIG_SHAPE))


def _is_kubeconfig(config: Any) -> bool:
    if not isinstance(config, dict) or not isinstance(config.get("current-context", ""), (str, type(None))):
        return False
    for key, field in _KUBECONFIG_LISTS:
        entries = config.get(key)
        if not isinstance(entries, list):
            return False
        for entry in entries:
            if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get(field), dict)):
                return False
            if not all(isinstance(name, str) for name in entry[field]):
                return False
    return all(isinstance(entry["context"].get(name, ""), str)
               for entry in config["contexts"] for name in ("cluster", "user", "namespace"))


def _load_kubeconfig(config: Dict[str, Any], path: Optional[str], context: Optional[str], configuration: Any) -> None:
    """Set ``configuration`` from a checked kubeconfig; ClusterError (one line, no content) if it cannot be used.

    A file is loaded by path, so that the certificate files it names are found relative to it.
    """
    shown = "kubeconfig %s" % _one_line(path) if path else "the inline kubeconfig"
    wanted = context or config.get("current-context")
    contexts = {entry["name"]: entry["context"] for entry in config["contexts"]}
    if not wanted:
        raise ClusterError("%s has no current-context: set context to one of its contexts" % shown)
    if wanted not in contexts:
        raise ClusterError("%s has no context %s: set context to one of its contexts"
                           % (shown, _one_line(context)) if context else
                           "%s: its current-context names no context of it; set context" % shown)
    for key, field in (("clusters", "cluster"), ("users", "user")):
        if contexts[wanted].get(field) not in {entry["name"] for entry in config[key]}:
            raise ClusterError("%s: the %s of context %s is not among its %s" % (shown, field, wanted if context else "current-context", key))
    try:
        if path:
            k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
        else:
            k8s_config.load_kube_config_from_dict(config, context=context, client_configuration=configuration)
    except ConfigException as exc:
        # The loader names entries by their names in the file ("clusters[name=...]"): left out, as all content is.
        raise ClusterError("cannot use %s: %s" % (shown, _one_line(_ENTRY_NAME.sub(_unnamed, str(exc))))) from None
    except Exception as exc:  # the loader fails with TypeError/ValueError/... on values of the wrong kind
        raise ClusterError("%s is not a kubeconfig (%s): a value in it is of the wrong kind (%s)"
                           % (shown, KUBECONFIG_SHAPE, type(exc).__name__)) from None


def build_configuration(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> "k8s_client.Configuration":
    """A client Configuration: explicit host credentials, else a kubeconfig, else in-cluster.

    Options given explicitly (certificates, api_key, proxy, ...) override what a kubeconfig says.
    """
    environ = os.environ if environ is None else environ
    auth = resolve_auth_params(params, environ)
    configuration = k8s_client.Configuration()
    kubeconfig = auth["kubeconfig"]
    try:
        if auth["host"]:
            configuration.host = auth["host"]
        elif kubeconfig is not None and not isinstance(kubeconfig, str) or isinstance(kubeconfig, str) and "\n" in kubeconfig:
            _load_kubeconfig(_checked_kubeconfig(kubeconfig, "the inline kubeconfig"), None, auth["context"], configuration)
        elif kubeconfig or _default_kubeconfig(environ):
            path = os.path.expanduser(kubeconfig) if kubeconfig else _default_kubeconfig(environ)
            _load_kubeconfig(_read_kubeconfig(path), path, auth["context"], configuration)
        elif environ.get("KUBERNETES_SERVICE_HOST"):
            directory = environ.get(SERVICE_ACCOUNT_DIR_ENV) or SERVICE_ACCOUNT_DIR
            try:
                InClusterConfigLoader(token_filename=os.path.join(directory, "token"),
                                      cert_filename=os.path.join(directory, "ca.crt"),
                                      environ=environ).load_and_set(configuration)
            except ConfigException as exc:
                raise ClusterError("cannot use the in-cluster service account (%s): %s; run in a pod whose "
                                   "service account token is mounted, or set kubeconfig or host"
                                   % (directory, _one_line(str(exc)))) from None
        else:
            raise ClusterError(
                "no cluster credentials: set kubeconfig (or K8S_AUTH_KUBECONFIG), or host with api_key, "
                "or run inside a pod with a service account"
            )
    except ConfigException as exc:
        raise ClusterError("cannot use %s: %s" % (describe_target(auth), _one_line(str(exc)))) from None

    header = None
    if auth["api_key"]:
        header = "Bearer " + auth["api_key"]
    elif auth["username"] and auth["password"]:
        header = "Basic " + base64.b64encode(("%s:%s" % (auth["username"], auth["password"])).encode()).decode()
    if header:
        # Both names the client versions read; and no kubeconfig refresh hook putting its token back.
        configuration.api_key = {"BearerToken": header, "authorization": header}
        configuration.api_key_prefix = {}
        configuration.refresh_api_key_hook = None
    if auth["validate_certs"] is not None:
        configuration.verify_ssl = bool(auth["validate_certs"])
    for option, attribute in (("ca_cert", "ssl_ca_cert"), ("client_cert", "cert_file"), ("client_key", "key_file")):
        if auth[option]:
            path = os.path.expanduser(auth[option])
            if not os.path.isfile(path):
                raise ClusterError("%s %s does not exist: give the path of a PEM file" % (option, path))
            setattr(configuration, attribute, path)
    if auth["proxy"]:
        configuration.proxy = auth["proxy"]
    return configuration


def build_api_client(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> "k8s_client.ApiClient":
    """An ApiClient for the cluster the auth options name (see build_configuration)."""
    if not HAS_KUBERNETES:
        raise ClusterError("the Python library 'kubernetes' is required: pip install kubernetes")
    api_client = k8s_client.ApiClient(build_configuration(params, environ))
    impersonate_user = resolve_auth_params(params, environ)["impersonate_user"]
    if impersonate_user:
        api_client.set_default_header("Impersonate-User", impersonate_user)
    return api_client


def request_timeout(environ: Optional[Mapping[str, str]] = None) -> float:
    """Seconds for one API request: OKERA_AUTH_K8S_REQUEST_TIMEOUT when it is a positive number, else REQUEST_TIMEOUT."""
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get(REQUEST_TIMEOUT_ENV) or REQUEST_TIMEOUT)
    except ValueError:
        return REQUEST_TIMEOUT
    return value if 0 < value < float("inf") else REQUEST_TIMEOUT


def server_of(api_client: Any) -> str:
    return without_userinfo(getattr(api_client.configuration, "host", "the API server"))


def _one_line(text: str, limit: int = 300) -> str:
    text = _SECRET_PATTERN.sub(r"\1 <redacted>", without_userinfo(" ".join(str(text).split())))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_message(exc: ApiException) -> str:
    """The Status message the server sent (it names the resource and user, never a credential)."""
    try:
        return _one_line(json.loads(exc.body or "{}").get("message") or exc.reason or "")
    except (ValueError, AttributeError):
        return _one_line(exc.reason or "")


def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nested = getattr(exc, "reason", None)
        if not isinstance(nested, BaseException):
            # urllib3's ProtocolError("Connection aborted.", <the error>) carries it as an argument.
            nested = next((arg for arg in getattr(exc, "args", ()) if isinstance(arg, BaseException)), None)
        if isinstance(nested, BaseException):
            exc = nested
            continue
        if exc.__cause__ is not None:
            exc = exc.__cause__
            continue
        if exc.__context__ is not None and not isinstance(exc, (ssl.SSLError, ConnectionError, socket.gaierror)):
            exc = exc.__context__
            continue
        break
    return exc


def explain(exc: BaseException, server: str, what: str) -> ClusterError:
    """Turn a failed call on `what` (e.g. "get Secret okera/secrets") into a ClusterError."""
    if isinstance(exc, ClusterError):
        return exc
    if isinstance(exc, ApiException):
        status = getattr(exc, "status", None)
        detail = _status_message(exc)
        if status == 401:
            message = ("%s: the API server at %s rejected the credentials (401 Unauthorized); "
                       "check the token or client certificate of the kubeconfig user, or api_key" % (what, server))
        elif status == 403:
            message = ("%s: forbidden (403): %s; grant the user RBAC permission for it, or use another context"
                       % (what, detail or "the user lacks permission"))
        elif status == 404:
            message = "%s: not found (404): %s; check name and namespace" % (what, detail or "no such object")
        elif status == 409:
            message = "%s: conflict (409), the object changed meanwhile: %s; run again" % (what, detail)
        elif status == 422:
            message = "%s: rejected as invalid (422): %s" % (what, detail)
        else:
            message = "%s: the API server at %s answered %s %s" % (what, server, status, detail)
        return ClusterError(message, status)
    cause = _root_cause(exc)
    text = _one_line(str(cause))
    if isinstance(cause, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in type(cause).__name__:
        return ClusterError("%s: TLS handshake with %s failed (%s); set ca_cert to the cluster CA, or "
                            "validate_certs: false for a test cluster" % (what, server, text))
    if isinstance(cause, socket.gaierror) or "NameResolution" in type(cause).__name__ or "Name or service not known" in text:
        return ClusterError("%s: cannot resolve the API server host of %s; check host / the kubeconfig's "
                            "cluster server" % (what, server))
    if isinstance(cause, ConnectionRefusedError) or "Connection refused" in text:
        return ClusterError("%s: cannot connect to the API server at %s (connection refused); is the cluster "
                            "running, and do kubeconfig/context/host point at it?" % (what, server))
    if isinstance(cause, (ConnectionResetError, ConnectionAbortedError)) or "without response" in text:
        return ClusterError("%s: the API server at %s closed the connection without an answer (%s): it may be "
                            "stopping or restarting" % (what, server, text))
    if isinstance(cause, (socket.timeout, TimeoutError)) or "timed out" in text.lower():
        return ClusterError("%s: the API server at %s did not answer within %s s; check the network path "
                            "and proxy, or allow more with %s" % (what, server, "%g" % request_timeout(), REQUEST_TIMEOUT_ENV))
    if HAS_KUBERNETES and isinstance(exc, urllib3.exceptions.HTTPError):
        return ClusterError("%s: cannot reach the API server at %s: %s" % (what, server, text))
    return ClusterError("%s: %s: %s" % (what, type(cause).__name__, text))


def request(api_client: Any, what: str, method: str, path: str, body: Any = None,
            content_type: str = "application/json", query: Optional[Mapping[str, str]] = None,
            sleeper: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """One REST call on the API server: the answer as the JSON dict the server sent.

    429 answers, and 5xx answers to a read, are asked again (RETRIED_STATUSES, RETRY_SLEEPS).

    It goes through the client's connection pool (TLS, proxy and credentials as configured) but
    not through its typed API classes, whose import builds hundreds of models (over a second per
    module run). Failures become ClusterError, with the status for API answers.
    """
    text = request_text(api_client, what, method, path, body, content_type, query, sleeper)
    try:
        return json.loads(text) if text else {}
    except ValueError:
        raise ClusterError("%s: the API server at %s did not answer JSON" % (what, server_of(api_client))) from None


def request_text(api_client: Any, what: str, method: str, path: str, body: Any = None,
                 content_type: str = "application/json", query: Optional[Mapping[str, str]] = None,
                 sleeper: Callable[[float], None] = time.sleep, accept: str = "application/json") -> str:
    """request() with the answer as the text the server sent (a pod's log is text/plain)."""
    configuration = api_client.configuration
    headers = {"Accept": accept, "User-Agent": "okera.auth"}
    headers.update(api_client.default_headers)
    for setting in configuration.auth_settings().values():
        if setting.get("in") == "header" and setting.get("value"):
            headers[setting["key"]] = setting["value"]
    data = None
    if body is not None:
        headers["Content-Type"] = content_type
        data = json.dumps(body).encode("utf-8")
    pairs = [(key, value) for key, value in sorted((query or {}).items()) if value]
    url = configuration.host.rstrip("/") + path + ("?" + urlencode(pairs) if pairs else "")
    attempt = 0
    while True:
        try:
            response = api_client.rest_client.pool_manager.request(
                method, url, body=data, headers=headers, timeout=urllib3.Timeout(total=request_timeout()),
                retries=urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, raise_on_status=False))
        except Exception as exc:  # every transport failure is translated, never shown as a traceback
            raise explain(exc, server_of(api_client), what) from None
        if attempt < len(RETRY_SLEEPS) and response.status in RETRIED_STATUSES and (method == "GET" or response.status == 429):
            sleeper(_retry_wait(response, attempt))
            attempt += 1
            continue
        break
    text = response.data.decode("utf-8", "replace")
    if not 200 <= response.status < 300:
        failure = ApiException(status=response.status, reason=response.reason)
        failure.body = text
        error = explain(failure, server_of(api_client), what)
        if attempt:
            error = ClusterError("%s (asked %d times)" % (error, attempt + 1), error.status)
        raise error
    return text


def _retry_wait(response: Any, attempt: int) -> float:
    """Seconds to wait before asking again: the answer's Retry-After (bounded), else the next of RETRY_SLEEPS."""
    try:
        return min(max(float(response.headers.get("Retry-After")), 0.0), RETRY_AFTER_LIMIT)
    except (TypeError, ValueError):
        return RETRY_SLEEPS[attempt]


def api_path(namespace: str, plural: str, name: Optional[str] = None, group: str = "") -> str:
    """/api/v1/namespaces/NS/PLURAL[/NAME], or /apis/GROUP/... for a named API group."""
    prefix = "/apis/%s" % group if group else "/api/v1"
    path = "%s/namespaces/%s/%s" % (prefix, quote(namespace, safe=""), plural)
    return path + ("/" + quote(name, safe="") if name else "")
