# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster-auth options and the one error of the Kubernetes modules, without the kubernetes library.

Kept apart from client.py (which imports the library, about half a second) so that a module that
only sometimes talks to a cluster imports the library only when it does.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional

from .._http import without_userinfo
from ..errors import OkeraAuthError

# Each option of the shared argument spec and the environment variable it falls back to,
# the names kubernetes.core uses.
AUTH_ENV: Dict[str, str] = {
    "kubeconfig": "K8S_AUTH_KUBECONFIG",
    "context": "K8S_AUTH_CONTEXT",
    "host": "K8S_AUTH_HOST",
    "api_key": "K8S_AUTH_API_KEY",
    "username": "K8S_AUTH_USERNAME",
    "password": "K8S_AUTH_PASSWORD",
    "validate_certs": "K8S_AUTH_VERIFY_SSL",
    "ca_cert": "K8S_AUTH_SSL_CA_CERT",
    "client_cert": "K8S_AUTH_CERT_FILE",
    "client_key": "K8S_AUTH_KEY_FILE",
    "proxy": "K8S_AUTH_PROXY",
    "impersonate_user": "K8S_AUTH_IMPERSONATE_USER",
}

AUTH_ARG_SPEC: Dict[str, Dict[str, Any]] = {
    # An inline kubeconfig (a dict) holds credentials, as a proxy URL may: never log either.
    "kubeconfig": {"type": "raw", "no_log": True},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"]},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"]},
    "client_cert": {"type": "path", "aliases": ["cert_file"]},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False},
    "proxy": {"type": "str", "no_log": True},
    "impersonate_user": {"type": "str"},
}

_TRUE_WORDS = {"1", "true", "yes", "on", "y"}


class ClusterError(OkeraAuthError):
    """A cluster call failed; the message is one line, safe to show, and says what to do."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status
        # A write that got no answer, or 500/504 ("may still be processing"): it may have been stored.
        self.write_unknown = False


def auth_argument_spec() -> Dict[str, Dict[str, Any]]:
    """A fresh copy of the shared cluster-auth options, to merge into a module's spec."""
    return {name: dict(spec) for name, spec in AUTH_ARG_SPEC.items()}


def resolve_auth_params(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The auth options with each unset one taken from its K8S_AUTH_* variable."""
    environ = os.environ if environ is None else environ
    resolved: Dict[str, Any] = {}
    for name, variable in AUTH_ENV.items():
        value = params.get(name)
        if value is None and environ.get(variable):
            value = environ[variable]
            if name == "validate_certs":
                value = value.strip().lower() in _TRUE_WORDS
        resolved[name] = value
    return resolved


def describe_target(params: Mapping[str, Any]) -> str:
    """How the user named the cluster, for messages: host, or context/kubeconfig."""
    if params.get("host"):
        return without_userinfo(params["host"])
    where = kubeconfig_name(params.get("kubeconfig"))
    return "context %s of %s" % (params["context"], where) if params.get("context") else where


def kubeconfig_name(kubeconfig: Any) -> str:
    """How messages name the kubeconfig option: its path, never the content of an inline one."""
    if kubeconfig is None or kubeconfig == "":
        return "default kubeconfig"
    if isinstance(kubeconfig, str) and "\n" not in kubeconfig:
        return " ".join(kubeconfig.split())
    return "inline kubeconfig"
