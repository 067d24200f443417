# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated Okera cluster: its Secrets, its services, and what a service checks at start.

An Okera service reads ``SYSTEM_TOKEN_0`` and the cluster's ``JWT_PUBLIC_KEY`` /
``JWT_ALGORITHM`` from its environment (filled from Secrets) when its container starts,
and serves only if the token verifies with one of the keys, names the system user and
has not expired; when the token expires later, the service fails and restarts.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Dict, Sequence

from okera_auth.module_utils.errors import OkeraAuthError
from okera_auth.module_utils.keys import load_public_keys, normalize_algorithm
from okera_auth.module_utils.tokens import SYSTEM_USER, decode_unverified, expiry_facts, iso8601, parse_time, verify
from .kubelet import StartOutcome
from .resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, SECRETS, STATEFULSETS
from .store import Store

SYSTEM_TOKEN_KEY = "SYSTEM_TOKEN_0"
TOKEN_SECRET = "secrets"
CONFIG_SECRET = "okera-config"
FAULTS_CONFIGMAP = "okera-sandbox-faults"
DEFAULT_ALGORITHM_SETTING = "RSA512"
IMAGE = "okera/sandbox-service:2.19.0"


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
                         _secret_env("JWT_ALGORITHM", config_secret, optional=True)]}
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


def seed_cluster(store: Store, namespace: str, system_token: str, public_keys_pem: Sequence[str],
                 algorithm_setting: str = DEFAULT_ALGORITHM_SETTING, token_secret: str = TOKEN_SECRET,
                 config_secret: str = CONFIG_SECRET) -> None:
    """Create the namespaces, the token and configuration Secrets and the Okera services.

    The configuration may live in the token's own Secret (``config_secret == token_secret``).
    """
    secrets_data = {token_secret: {}, config_secret: {}}
    secrets_data[token_secret][SYSTEM_TOKEN_KEY] = _b64(system_token)
    secrets_data[config_secret].update({
        "JWT_PUBLIC_KEY": _b64(",".join(pem.strip() for pem in public_keys_pem)),
        "JWT_ALGORITHM": _b64(algorithm_setting)})
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


def _faults(store: Store, namespace: str) -> Dict[str, str]:
    configmap = store.find(CONFIGMAPS, namespace, FAULTS_CONFIGMAP)
    return dict((configmap or {}).get("data") or {})


def okera_start_check(environment: Dict[str, str], namespace: str, store: Store) -> StartOutcome:
    """Whether an Okera service starting with ``environment`` comes up, and until when."""
    token = environment.get(SYSTEM_TOKEN_KEY)
    if token is None:
        return StartOutcome(ready=True)  # not an Okera service: nothing to check
    faults = _faults(store, namespace)
    if faults.get("podsNeverReady", "").lower() == "true":
        return StartOutcome(False, "the service does not start (sandbox fault podsNeverReady)")
    try:
        keys = load_public_keys(environment.get("JWT_PUBLIC_KEY", ""))
        algorithm = normalize_algorithm(environment.get("JWT_ALGORITHM") or DEFAULT_ALGORITHM_SETTING)
        result = verify(token, keys, [algorithm], subject=SYSTEM_USER)
    except OkeraAuthError as error:
        return StartOutcome(False, "the system token was rejected: %s" % error)
    if not result.valid:
        return StartOutcome(False, "the system token was rejected: %s" % result.reason)
    reject_after = faults.get("rejectTokensIssuedAfter")
    if reject_after:
        try:
            limit = parse_time(reject_after)
        except OkeraAuthError:
            limit = None
        if limit is not None and result.claims.get("iat", 0) > limit:
            return StartOutcome(False, "the system token was rejected "
                                       "(sandbox fault rejectTokensIssuedAfter)")
    return StartOutcome(True, "serving: the system token of %s verifies until %s"
                        % (result.claims["sub"], iso8601(result.claims["exp"])),
                        expires_at=float(result.claims["exp"]))


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
        keys = load_public_keys(config.get("JWT_PUBLIC_KEY", ""))
        algorithm = normalize_algorithm(config.get("JWT_ALGORITHM") or DEFAULT_ALGORITHM_SETTING)
        result = verify(token, keys, [algorithm], subject=SYSTEM_USER)
    except (OkeraAuthError, ValueError) as error:
        report["reason"] = str(error) if isinstance(error, OkeraAuthError) else "not base64 text"
        return report
    report.update(valid=result.valid, reason=result.reason)
    return report
