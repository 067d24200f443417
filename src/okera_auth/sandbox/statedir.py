# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A sandbox's state directory: its settings, keys, API tokens, certificates and kubeconfig.

Layout (all files 0600 unless noted; the directory 0700):
``sandbox.json`` settings and API tokens, ``cluster.json`` every object of the cluster,
``signing-key.pem`` the key the system token is signed with (the rotation mints with it),
``public-key.pem`` (0644), ``admin.token`` / ``reader.token`` bearer tokens,
``ca.crt`` (0644) / ``server.crt`` (0644) / ``server.key`` with TLS, ``kubeconfig``,
``server.pid`` and ``server.log`` while a background server runs, ``faults.json`` the faults
the API server injects (faults.py; ``okera-auth-sandbox fault``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Set, Tuple

from okera_auth.module_utils.errors import OkeraAuthError
from okera_auth.module_utils.files import write_file_atomic
from okera_auth.module_utils.keys import normalize_algorithm, public_key_pem
from okera_auth.module_utils.tokens import SYSTEM_USER, Signer, TokenSpec, mint
from .errors import ApiError, SandboxError
from .faults import FAULTS_FILE
from .okera import CONFIG_SECRET, DEFAULT_ALGORITHM_SETTING, TOKEN_SECRET, seed_cluster
from .server import User
from .store import Store
from .pki import generate_signing_key, require_cryptography, write_certificates

SETTINGS_FORMAT = 1
ADMIN_USER = "okera-sandbox-admin"
READER_USER = "okera-sandbox-reader"
CLUSTER_NAME = "okera-sandbox"
DEFAULT_GROUPS = ("okera_catalog_admins",)
DEFAULT_ISSUER = "okera-sandbox"


@dataclass
class Settings:
    namespace: str = "default"
    tls: bool = True
    admin_token: str = ""
    reader_token: str = ""
    token_secret: str = TOKEN_SECRET
    config_secret: str = CONFIG_SECRET
    issuer: str = DEFAULT_ISSUER
    groups: List[str] = field(default_factory=lambda: list(DEFAULT_GROUPS))


class StateDir:
    """The files of one sandbox, by name."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.cluster = self.path("cluster.json")
        self.settings_file = self.path("sandbox.json")
        self.signing_key = self.path("signing-key.pem")
        self.kubeconfig = self.path("kubeconfig")
        self.pidfile = self.path("server.pid")
        self.log = self.path("server.log")
        self.ca_cert = self.path("ca.crt")
        self.faults = self.path(FAULTS_FILE)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def initialized(self) -> bool:
        return os.path.exists(self.settings_file) and os.path.exists(self.cluster)

    def settings(self) -> Settings:
        if not self.initialized():
            raise SandboxError("no sandbox in %s: run okera-auth-sandbox init --state-dir %s first"
                               % (self.root, self.root))
        try:
            with open(self.settings_file, encoding="utf-8") as handle:
                data = json.load(handle)
            data.pop("format")
            return Settings(**data)
        except (OSError, ValueError, TypeError, KeyError):
            raise SandboxError("%s is unreadable or from another version: run okera-auth-sandbox "
                               "init --force --state-dir %s" % (self.settings_file, self.root)) from None

    def save_settings(self, settings: Settings) -> None:
        data = dict(vars(settings), format=SETTINGS_FORMAT)
        write_file_atomic(self.settings_file, json.dumps(data, indent=1).encode("utf-8"), mode=0o600)

    def store(self) -> Store:
        return Store(self.cluster)

    def users(self, settings: Settings) -> List[Tuple[str, User]]:
        return [(settings.admin_token, User(ADMIN_USER, can_write=True)),
                (settings.reader_token, User(READER_USER, can_write=False))]

    def ensure_certificates(self) -> Tuple[str, str]:
        """(certificate, key) of the server, generated with their CA when missing."""
        cert, key = self.path("server.crt"), self.path("server.key")
        if not (os.path.exists(cert) and os.path.exists(key) and os.path.exists(self.ca_cert)):
            write_certificates(self.ca_cert, cert, key)
        return cert, key

    def write_kubeconfig(self, settings: Settings, url: str, path: Optional[str] = None) -> str:
        """Write a kubeconfig (JSON, which kubectl and the clients read as YAML) for ``url``."""
        cluster = {"server": url}
        if url.startswith("https://"):
            with open(self.ca_cert, "rb") as handle:
                cluster["certificate-authority-data"] = base64.b64encode(handle.read()).decode("ascii")
        contexts = [(CLUSTER_NAME, ADMIN_USER), (CLUSTER_NAME + "-readonly", READER_USER)]
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": CLUSTER_NAME, "cluster": cluster}],
            "users": [{"name": ADMIN_USER, "user": {"token": settings.admin_token}},
                      {"name": READER_USER, "user": {"token": settings.reader_token}}],
            "contexts": [{"name": name, "context": {"cluster": CLUSTER_NAME, "user": user,
                                                    "namespace": settings.namespace}}
                         for name, user in contexts],
            "current-context": CLUSTER_NAME,
        }
        target = os.path.abspath(path or self.kubeconfig)
        write_file_atomic(target, (json.dumps(config, indent=2) + "\n").encode("utf-8"), mode=0o600)
        return target


def init_sandbox(state: StateDir, namespace: str = "default", token_ttl: int = 30 * 86400,
                 issuer: str = DEFAULT_ISSUER, groups: Sequence[str] = DEFAULT_GROUPS,
                 algorithm: str = DEFAULT_ALGORITHM_SETTING, tls: bool = True,
                 config_secret: str = CONFIG_SECRET, force: bool = False,
                 catalog_admins: Optional[Sequence[str]] = None) -> Settings:
    """Create a sandbox: keys, an Okera system token, the cluster's objects, API tokens.

    ``catalog_admins`` (the cluster's CATALOG_ADMINS) default to ``groups``; an empty list
    leaves CATALOG_ADMINS out (any groups do).
    """
    require_cryptography()
    if state.initialized() and not force:
        raise SandboxError("%s already holds a sandbox: give --force to replace it" % state.root)
    # Everything that can be refused is tried in memory first (key, token, the cluster's
    # objects with their names): a bad --namespace must not leave a half-made sandbox.
    try:
        jwa = normalize_algorithm(algorithm)
        private_key, private_pem = generate_signing_key()
        minted = mint(Signer(private_key, jwa), TokenSpec(
            subject=SYSTEM_USER, issuer=issuer or None, groups=list(groups), ttl=token_ttl))
    except OkeraAuthError as error:
        raise SandboxError(str(error)) from None
    public_pem = public_key_pem(private_key.public_key())
    settings = Settings(namespace=namespace, tls=tls, admin_token=secrets.token_urlsafe(32),
                        reader_token=secrets.token_urlsafe(32), config_secret=config_secret,
                        issuer=issuer, groups=list(groups))
    admins = list(groups) if catalog_admins is None else list(catalog_admins)

    def seed(store: Store) -> None:
        seed_cluster(store, namespace, minted.token, [public_pem], algorithm,
                     token_secret=settings.token_secret, config_secret=config_secret,
                     catalog_admins=admins)

    try:
        seed(Store())
    except ApiError as error:
        raise SandboxError("the sandbox's cluster objects are refused (check --namespace and "
                           "--config-secret): %s" % error.message) from None
    made_root = not os.path.isdir(state.root)
    try:
        os.makedirs(state.root, mode=0o700, exist_ok=True)
        os.chmod(state.root, 0o700)
    except OSError as error:
        raise SandboxError("cannot create %s: %s" % (state.root, error.strerror)) from None
    present = set(os.listdir(state.root))
    try:
        write_file_atomic(state.signing_key, private_pem, mode=0o600)
        write_file_atomic(state.path("public-key.pem"), public_pem.encode("ascii"), mode=0o644)
        for name, token in (("admin.token", settings.admin_token), ("reader.token", settings.reader_token)):
            write_file_atomic(state.path(name), token.encode("ascii"), mode=0o600)
        if tls:
            write_certificates(state.ca_cert, state.path("server.crt"), state.path("server.key"))
        for stale in (state.cluster, state.faults):
            if os.path.exists(stale):
                os.unlink(stale)
        seed(Store(state.cluster))
        state.save_settings(settings)
    except BaseException:
        _remove_new_files(state.root, present, made_root)
        raise
    return settings


def _remove_new_files(root: str, present: Set[str], made_root: bool) -> None:
    """Undo a failed init: the files it added, and the directory if it made it (a directory
    that was there before keeps what it held)."""
    for name in set(os.listdir(root)) - present:
        try:
            os.unlink(os.path.join(root, name))
        except OSError:
            pass
    if made_root:
        try:
            os.rmdir(root)
        except OSError:
            pass
