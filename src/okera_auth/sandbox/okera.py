# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated Okera cluster: its Secrets, its services, and what a service checks at start.

An Okera service reads ``SYSTEM_TOKEN_0`` and the cluster's ``JWT_PUBLIC_KEY`` /
``JWT_ALGORITHM`` from its environment (filled from Secrets) when its container starts,
and serves only if the token verifies with one of the keys, names the system user and
has not expired; when the token expires later, the service fails and restarts. What a
started service knows (its keys, algorithm, the hash and claims of its system token) is
kept with the running container, for the REST stand-in (``okera_rest``) to answer from.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from okera_auth.module_utils.errors import OkeraAuthError
from okera_auth.module_utils.keys import load_public_keys, normalize_algorithm
from okera_auth.module_utils.tokens import SYSTEM_USER, decode_unverified, expiry_facts, iso8601, parse_time, verify
from .kubelet import StartOutcome
from .resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, SECRETS, SERVICE_RESOURCE, STATEFULSETS
from .store import Store

SYSTEM_TOKEN_KEY = "SYSTEM_TOKEN_0"
TOKEN_SECRET = "secrets"
CONFIG_SECRET = "okera-config"
CATALOG_ADMINS_KEY = "CATALOG_ADMINS"  # comma-separated groups; the system token must be in one
FAULTS_CONFIGMAP = "okera-sandbox-faults"
DEFAULT_ALGORITHM_SETTING = "RSA512"
IMAGE = "okera/sandbox-service:2.19.0"
OKERA_VERSION = "2.19.0"
REST_SERVICE = "cdas-rest-server"  # the Service (type LoadBalancer) in front of the REST pods
REST_CONTAINER_PORT = 8083  # where Okera 2.x's REST server listens in its pod


@dataclass(frozen=True)
class Service:
    kind: str
    name: str
    component: str
    replicas: int


SERVICES = (
    Service("Deployment", "cdas-rest-server", "rest-server", 2),
    Service("Deployment", "cerebro-planner", "planner", 1),
    Service("StatefulSet", "cerebro-worker", "worker", 2),
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _secret_env(name: str, secret: str, optional: bool = False) -> dict:
    reference = {"name": secret, "key": name}
    if optional:
        reference["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": reference}}


def service_object(service: Service, namespace: str, token_secret: str = TOKEN_SECRET,
                   config_secret: str = CONFIG_SECRET) -> dict:
    """The Deployment or StatefulSet of one Okera service, as an installer would write it."""
    labels = {"app": service.name, "app.kubernetes.io/name": service.name,
              "app.kubernetes.io/component": service.component, "app.kubernetes.io/part-of": "okera"}
    container = {"name": service.component, "image": IMAGE,
                 "env": [_secret_env(SYSTEM_TOKEN_KEY, token_secret),
                         _secret_env("JWT_PUBLIC_KEY", config_secret),
                         _secret_env("JWT_ALGORITHM", config_secret, optional=True),
                         _secret_env(CATALOG_ADMINS_KEY, config_secret, optional=True)]}
    if service.name == REST_SERVICE:
        container["ports"] = [{"name": "api", "containerPort": REST_CONTAINER_PORT, "protocol": "TCP"}]
    spec = {"replicas": service.replicas, "selector": {"matchLabels": {"app": service.name}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}
    if service.kind == "StatefulSet":
        # Parallel, so that a restart can replace pods that crash for want of a valid token
        # (OrderedReady would wait forever for the first one, as on a real cluster).
        spec.update(serviceName=service.name, podManagementPolicy="Parallel")
    rtype = DEPLOYMENTS if service.kind == "Deployment" else STATEFULSETS
    return {"apiVersion": rtype.api_version, "kind": rtype.kind,
            "metadata": {"name": service.name, "namespace": namespace, "labels": labels},
            "spec": spec}


def rest_service_object(namespace: str, port: int = REST_CONTAINER_PORT) -> dict:
    """Service cdas-rest-server: a load balancer in front of the REST server's pods.

    ``port`` is the load balancer's port; the sandbox's server writes the port its REST
    listener bound there when it starts.
    """
    labels = {"app": REST_SERVICE, "app.kubernetes.io/name": REST_SERVICE, "app.kubernetes.io/part-of": "okera"}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": REST_SERVICE, "namespace": namespace, "labels": labels},
            "spec": {"type": "LoadBalancer", "selector": {"app": REST_SERVICE},
                     "ports": [{"name": "api", "port": port, "targetPort": REST_CONTAINER_PORT,
                                "protocol": "TCP"}]}}


def seed_cluster(store: Store, namespace: str, system_token: str, public_keys_pem: Sequence[str],
                 algorithm_setting: str = DEFAULT_ALGORITHM_SETTING, token_secret: str = TOKEN_SECRET,
                 config_secret: str = CONFIG_SECRET, catalog_admins: Optional[Sequence[str]] = None) -> None:
    """Create the namespaces, the token and configuration Secrets and the Okera services.

    The configuration may live in the token's own Secret (``config_secret == token_secret``).
    ``catalog_admins`` become ``CATALOG_ADMINS`` (none: the key is left out, and any groups do).
    """
    secrets_data = {token_secret: {}, config_secret: {}}
    secrets_data[token_secret][SYSTEM_TOKEN_KEY] = _b64(system_token)
    secrets_data[config_secret].update({
        "JWT_PUBLIC_KEY": _b64(",".join(pem.strip() for pem in public_keys_pem)),
        "JWT_ALGORITHM": _b64(algorithm_setting)})
    if catalog_admins:
        secrets_data[config_secret][CATALOG_ADMINS_KEY] = _b64(",".join(catalog_admins))
    with store.batch():
        for name in sorted({"default", "kube-system", "kube-public", namespace}):
            store.create(NAMESPACES, "", {"metadata": {"name": name}})
        for name, data in sorted(secrets_data.items()):
            store.create(SECRETS, namespace, {
                "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "okera"}},
                "type": "Opaque", "data": data})
        for service in SERVICES:
            rtype = DEPLOYMENTS if service.kind == "Deployment" else STATEFULSETS
            store.create(rtype, namespace, service_object(service, namespace, token_secret, config_secret))
        store.create(SERVICE_RESOURCE, namespace, rest_service_object(namespace))


def fault_time(faults_set: Dict[str, str], name: str) -> Optional[int]:
    """A fault's time (epoch seconds or ISO 8601), or None when unset or unreadable."""
    text = faults_set.get(name)
    if not text:
        return None
    try:
        return parse_time(text)
    except OkeraAuthError:
        return None


def read_faults(store: Store, namespace: str) -> Dict[str, str]:
    """The sandbox faults set in ConfigMap okera-sandbox-faults of the namespace."""
    configmap = store.find(CONFIGMAPS, namespace, FAULTS_CONFIGMAP)
    return dict((configmap or {}).get("data") or {})


def catalog_admins(setting: Optional[str]) -> Optional[List[str]]:
    """The groups of Okera's comma-separated CATALOG_ADMINS; None when unset or empty."""
    admins = [group.strip() for group in (setting or "").split(",") if group.strip()]
    return admins or None


def admins_refusal(groups, admins: Optional[Sequence[str]]) -> Optional[str]:
    """Why a system token with ``groups`` is not a catalog admin of the cluster, or None."""
    if not admins:
        return None
    groups = [group for group in groups if isinstance(group, str)] if isinstance(groups, list) else []
    if set(groups) & set(admins):
        return None
    return ("its groups (%s) include none of the catalog admins (CATALOG_ADMINS: %s)"
            % (", ".join(groups)[:200] or "none", ", ".join(admins)[:200]))


MAX_KEY_FILE = 64 * 1024


def key_setting_text(setting: str) -> str:
    """The key text of a JWT_PUBLIC_KEY setting, reading the files it names, as Okera does.

    Okera takes a path (or an ``s3://`` URI) of each key, comma-separated; the sandbox reads
    local paths (its pods share the machine's files) and cannot read URIs. A setting that
    holds the key text itself is returned as it is.
    """
    items = [item.strip() for item in (setting or "").split(",") if item.strip()]
    if not items or not all(item.startswith("/") or "://" in item for item in items):
        return setting or ""
    texts = []
    for item in items:
        if "://" in item:
            raise OkeraAuthError("cannot read the key at %s: the sandbox reads local files only" % item[:200])
        try:
            with open(item, "rb") as handle:
                texts.append(handle.read(MAX_KEY_FILE).decode("utf-8", "replace"))
        except OSError as error:
            raise OkeraAuthError("cannot read the key file %s: %s" % (item[:200], error.strerror)) from None
    return ",".join(texts)


def okera_start_check(environment: Dict[str, str], namespace: str, store: Store) -> StartOutcome:
    """Whether an Okera service starting with ``environment`` comes up, and until when."""
    token = environment.get(SYSTEM_TOKEN_KEY)
    if token is None:
        return StartOutcome(ready=True)  # not an Okera service: nothing to check
    faults = read_faults(store, namespace)
    if faults.get("podsNeverReady", "").lower() == "true":
        return StartOutcome(False, "the service does not start (sandbox fault podsNeverReady)")
    try:
        key_text = key_setting_text(environment.get("JWT_PUBLIC_KEY", ""))
        keys = load_public_keys(key_text)
        algorithm = normalize_algorithm(environment.get("JWT_ALGORITHM") or DEFAULT_ALGORITHM_SETTING)
        result = verify(token, keys, [algorithm], subject=SYSTEM_USER)
    except OkeraAuthError as error:
        return StartOutcome(False, "the system token was rejected: %s" % error)
    if not result.valid:
        return StartOutcome(False, "the system token was rejected: %s" % result.reason)
    limit = fault_time(faults, "rejectTokensIssuedAfter")
    if limit is not None and result.claims.get("iat", 0) > limit:
        return StartOutcome(False, "the system token was rejected "
                                   "(sandbox fault rejectTokensIssuedAfter)")
    admins = catalog_admins(environment.get(CATALOG_ADMINS_KEY))
    refusal = admins_refusal(result.claims.get("groups"), admins)
    if refusal:
        return StartOutcome(False, "the system token was rejected: %s" % refusal)
    details = {"jwtPublicKey": key_text, "jwtAlgorithm": algorithm,
               "catalogAdmins": admins,
               "systemToken": {"sha256": hashlib.sha256(token.encode("utf-8")).hexdigest(),
                               "iat": result.claims.get("iat"), "groups": result.claims.get("groups")}}
    return StartOutcome(True, "serving: the system token of %s verifies until %s"
                        % (result.claims["sub"], iso8601(result.claims["exp"])),
                        expires_at=float(result.claims["exp"]), details=details)


def token_report(store: Store, namespace: str, token_secret: str = TOKEN_SECRET,
                 config_secret: str = CONFIG_SECRET) -> dict:
    """What the cluster's stored system token says, and whether the cluster would accept it.

    Claims and expiry only: never the token or a key.
    """
    report = {"secret": "%s/%s" % (namespace, token_secret), "key": SYSTEM_TOKEN_KEY, "subject": None,
              "issuer": None, "groups": None, "expires_at": None, "expires_in": None,
              "valid": False, "reason": None}
    token_obj = store.find(SECRETS, namespace, token_secret)
    config_obj = store.find(SECRETS, namespace, config_secret)
    encoded = ((token_obj or {}).get("data") or {}).get(SYSTEM_TOKEN_KEY)
    if encoded is None:
        report["reason"] = "the Secret %s/%s has no %s" % (namespace, token_secret, SYSTEM_TOKEN_KEY)
        return report
    config = {key: base64.b64decode(value).decode("utf-8", "replace")
              for key, value in ((config_obj or {}).get("data") or {}).items()}
    try:
        token = base64.b64decode(encoded).decode("ascii")
        decoded = decode_unverified(token)
        report.update(subject=decoded.claims.get("sub"), issuer=decoded.claims.get("iss"),
                      groups=decoded.claims.get("groups"))
        report.update({name: value for name, value in expiry_facts(decoded.claims).items()
                       if name in ("expires_at", "expires_in")})
        keys = load_public_keys(key_setting_text(config.get("JWT_PUBLIC_KEY", "")))
        algorithm = normalize_algorithm(config.get("JWT_ALGORITHM") or DEFAULT_ALGORITHM_SETTING)
        result = verify(token, keys, [algorithm], subject=SYSTEM_USER)
    except (OkeraAuthError, ValueError) as error:
        report["reason"] = str(error) if isinstance(error, OkeraAuthError) else "not base64 text"
        return report
    refusal = admins_refusal(result.claims.get("groups"), catalog_admins(config.get(CATALOG_ADMINS_KEY))) \
        if result.valid else None
    report.update(valid=result.valid and not refusal, reason=result.reason or refusal)
    return report
