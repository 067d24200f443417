# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of a cluster's system tokens to rotate, and why.

The role okera.auth.system_token reads the token Secret and the cluster's
configuration Secret; what to do with the token under each configured key is
decided here, from that plain data, and reported without any token text.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import KeyLoadError, TokenFormatError
from .keys import DEFAULT_ALGORITHM, PublicKeyEntry, load_all_public_keys, normalize_algorithm, public_jwk
from .tokens import decode_unverified, expiry_facts, is_numeric_date, iso8601, parse_duration, verify

# What to set when the cluster's configuration holds no public key (the role's variables).
CONFIG_HINT = ("set system_token_config_secret_name / system_token_config_public_key_key, or give "
               "the cluster's public key(s) in system_token_public_keys")
# Reasons quote a token's header values (alg, crit) and the summary its sub and iss: a hostile
# token must not flood the report.
_SHOWN_LIMIT = 200
# Okera's JWT_PUBLIC_KEY may name where the key is (a file path, an s3:// URI) rather than hold it.
_KEY_LOCATION = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://\S+|/\S*|~\S*|\.{1,2}/\S*)")
# Okera's CATALOG_ADMINS: comma-separated group names.
CATALOG_ADMINS_KEY = "CATALOG_ADMINS"
# The annotation a rotation writes on the token Secret with the new token(s), and removes once the
# workloads were restarted with them and checked: while it is there, the rotation is unfinished.
# Its value is JSON: {"started": ISO 8601, "by": inventory host, "keys": {key: "sha256:<hex>"}}.
ROTATION_MARKER = "okera.auth/rotation-unfinished"


@dataclass(frozen=True)
class ClusterKeys:
    """The public keys and the algorithm a cluster verifies tokens with."""

    entries: Sequence[PublicKeyEntry]
    algorithm: str

    def public_jwks(self) -> str:
        """The keys as JWKS JSON text: only public halves, whatever form they came in.

        Not the PEM the keys may have been given as: modules hide the given key text from logs,
        and Ansible would mask it in the result as well.
        """
        return json.dumps({"keys": [public_jwk(entry.key) for entry in self.entries]})


def cluster_keys(public_key_content: Sequence[str] = (), algorithm: Optional[str] = None,
                 config: Optional[Mapping[str, str]] = None,
                 config_name: str = "the configuration Secret",
                 config_public_key_key: str = "JWT_PUBLIC_KEY",
                 config_algorithm_key: str = "JWT_ALGORITHM") -> ClusterKeys:
    """The keys and algorithm to verify with: the given ones, else the cluster's configuration.

    ``config`` is the data of the configuration Secret (None when it does not exist), read
    only when no ``public_key_content`` is given. The algorithm is ``algorithm``, else the
    configuration's when the keys came from it, else RS512. Raises KeyLoadError or
    AlgorithmError with a one-line reason.
    """
    texts = list(public_key_content)
    configured_algorithm = None
    for number, text in enumerate(texts, 1):
        location = key_location(text)
        if location:
            raise KeyLoadError("system_token_public_keys item %d is where a key is (%s), not the key: give the key's "
                               "text (read a file with the ansible.builtin.file lookup)" % (number, location))
    if not texts:
        if config is None:
            raise KeyLoadError("%s does not exist: %s" % (config_name, CONFIG_HINT))
        if config_public_key_key not in config:
            raise KeyLoadError("%s has no key %s: %s" % (config_name, config_public_key_key, CONFIG_HINT))
        texts = [config[config_public_key_key]]
        location = key_location(texts[0])
        if location:
            raise KeyLoadError("%s %s names where Okera reads the key (%s), not the key itself: give the key's PEM "
                               "text in system_token_public_keys" % (config_name, config_public_key_key, location))
        configured_algorithm = config.get(config_algorithm_key)
    chosen = next((str(name).strip() for name in (algorithm, configured_algorithm)
                   if name is not None and str(name).strip()), DEFAULT_ALGORITHM)
    entries = load_all_public_keys(texts)
    return ClusterKeys(entries=tuple(entries), algorithm=normalize_algorithm(chosen))


def key_location(text: Any) -> Optional[str]:
    """The file path(s) or URI(s) that ``text`` names instead of holding a key, else None.

    Okera reads ``JWT_PUBLIC_KEY`` as the path or ``s3://`` URI of a PKCS#8 key (several
    comma-separated); the role needs the key itself. PEM, JWK, OpenSSH lines and base64 of
    them never match.
    """
    if not isinstance(text, str):
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items or not all(_KEY_LOCATION.fullmatch(item) for item in items):
        return None
    return _short(", ".join(items))


def catalog_admins_of(config: Optional[Mapping[str, Any]] = None, given: Optional[Sequence[str]] = None,
                      config_name: str = "the configuration Secret",
                      key: str = CATALOG_ADMINS_KEY) -> Tuple[Optional[List[str]], Optional[str]]:
    """(the cluster's catalog admin groups, where they come from), or (None, None) when unknown.

    ``given`` (the role's system_token_catalog_admins) wins; else ``key`` of the configuration,
    Okera's comma-separated ``CATALOG_ADMINS``. An empty list or value means unknown.
    """
    if given is not None:
        admins = [str(group).strip() for group in given if str(group).strip()]
        return (admins, "system_token_catalog_admins") if admins else (None, None)
    value = (config or {}).get(key)
    if not isinstance(value, str):
        return None, None
    admins = [group.strip() for group in value.split(",") if group.strip()]
    return (admins, "%s of %s" % (key, config_name)) if admins else (None, None)


@dataclass(frozen=True)
class TokenPlan:
    """What to do with the token under one Secret key, and what is known of it; never the token."""

    key: str
    present: bool
    subject: Optional[str]
    issuer: Optional[str]
    groups: List[str]
    expires_at: Optional[str]
    # The token's iat, ISO 8601 UTC; None without a readable one (for metrics and reports).
    issued_at: Optional[str]
    expires_in: Optional[int]
    days_left: Optional[float]
    # The new token's iss and groups unless others are given: this token's, else another's,
    # taken only from a token whose signature verifies with the cluster's keys (expired or not).
    keep_issuer: Optional[str]
    keep_groups: List[str]
    valid: bool
    rotate: bool
    why: str
    # Whether the signature verifies with the cluster's key(s), expiry aside.
    genuine: bool = False
    # Whether the token's groups include one of the cluster's catalog admins; None when unknown.
    catalog_admin: Optional[bool] = None
    # The groups a new token for this key gets, and where they come from.
    new_groups: List[str] = field(default_factory=list)
    new_groups_from: Optional[str] = None

    @property
    def summary(self) -> str:
        """One line for the operator, e.g. ``SYSTEM_TOKEN_0: sub=... (2.0 days left), expires within 7d: rotate``."""
        return "%s: sub=%s iss=%s expires %s (%s days left), %s: %s" % (
            self.key, _shown(self.subject), _shown(self.issuer), _shown(self.expires_at),
            _shown(self.days_left), self.why, "rotate" if self.rotate else "keep")

    def as_dict(self) -> dict:
        return dict(asdict(self), summary=self.summary)


@dataclass(frozen=True)
class _Reading:
    """A token as read: its claims (empty when unreadable) and the verdict on it."""

    claims: Mapping[str, Any]
    unreadable: Optional[str] = None  # why, when the token could not be read
    valid: bool = False
    reason: Optional[str] = None  # why it does not verify
    genuine: bool = False  # the signature verifies (the token may have expired)


@dataclass(frozen=True)
class _Groups:
    """What the new tokens' groups are measured against."""

    given: Sequence[str]
    admins: Optional[Sequence[str]]


def plan_rotation(tokens: Mapping[str, Any], secret_keys: Sequence[str], keys: ClusterKeys,
                  rotate_before: Union[str, int], force: bool = False,
                  now: Optional[float] = None, groups: Sequence[str] = (),
                  catalog_admins: Optional[Sequence[str]] = None) -> List[TokenPlan]:
    """One plan per key of ``secret_keys``, in order: rotate the token when it is missing,
    unreadable, does not verify with ``keys``, has groups of which none is a catalog admin,
    expires within ``rotate_before`` (or has no expiry), or when ``force``; else keep it.

    ``tokens`` maps Secret keys to their values (keys not configured are ignored). ``now``
    (epoch seconds) sets the clock of the expiry and the threshold; signatures and ``exp``
    are checked by PyJWT against the real clock. Raises ClaimsError for a bad ``rotate_before``.

    A new token's groups are ``groups`` when given; else those of this key's token, else of
    the first token (in the order of ``secret_keys``) whose signature verifies with ``keys``,
    expired or not (a token that does not verify lends nothing: whoever could write it into
    the Secret could not sign it); else ``catalog_admins``.
    """
    threshold = parse_duration(rotate_before)
    threshold_text = str(rotate_before).strip()
    now = time.time() if now is None else now
    readings = {key: _read(tokens[key], keys) for key in secret_keys if key in tokens}
    genuine = [(key, reading.claims) for key, reading in readings.items() if reading.genuine]
    fallback = genuine[0] if genuine else (None, {})
    wanted = _Groups(list(groups), list(catalog_admins) if catalog_admins else None)
    return [_plan(key, readings.get(key), fallback, threshold, threshold_text, force, now, wanted)
            for key in secret_keys]


def rotation_refusal(plans: Sequence[TokenPlan], catalog_admins: Optional[Sequence[str]] = None,
                     catalog_admins_from: Optional[str] = None) -> Optional[str]:
    """Why the tokens to rotate cannot be minted as planned (one line naming the role's
    variables), or None: a new token without groups, or whose groups include none of the
    cluster's catalog admins, would be refused by the cluster."""
    for plan in plans:
        if not plan.rotate:
            continue
        if not plan.new_groups:
            return ("%s: no current token verifies with the cluster's key(s) to take the groups from, and the "
                    "cluster's catalog admins are unknown: set system_token_groups to the catalog admins"
                    % plan.key)
        if catalog_admins and not set(plan.new_groups) & set(catalog_admins):
            return ("%s: the new token's groups (%s, from %s) include none of the cluster's catalog admins (%s, from "
                    "%s), so the cluster would refuse it: set system_token_groups to include one of them"
                    % (plan.key, _short(", ".join(plan.new_groups)), plan.new_groups_from,
                       _short(", ".join(catalog_admins)), catalog_admins_from or "system_token_catalog_admins"))
    return None


def _read(value: Any, keys: ClusterKeys) -> _Reading:
    if not isinstance(value, str):
        return _Reading(claims={}, unreadable="the value is not text")
    try:
        claims = decode_unverified(value).claims
    except TokenFormatError as error:
        return _Reading(claims={}, unreadable=str(error))
    problem = _claims_problem(claims)
    if problem:
        return _Reading(claims={}, unreadable=problem)
    verdict = verify(value, keys.entries, [keys.algorithm])
    genuine = verdict.valid
    expiry = claims.get("exp")
    if not genuine and is_numeric_date(expiry) and expiry <= time.time():
        # Expired: does the signature verify all the same? (PyJWT checks it before exp.)
        genuine = verify(value, keys.entries, [keys.algorithm], leeway=time.time() - expiry + 60).valid
    return _Reading(claims=claims, valid=verdict.valid, reason=verdict.reason, genuine=genuine)


def _claims_problem(claims: Mapping[str, Any]) -> Optional[str]:
    """Why the claims a report shows and a new token keeps are not of their types, or None.

    The dates are verify's to judge (a token with a text for exp does not verify).
    """
    for name in ("sub", "iss"):
        if name in claims and not isinstance(claims[name], str):
            return "the token's %s claim is not a text" % name
    groups = claims.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        return "the token's groups claim is not a list of texts"
    return None


def _plan(key: str, reading: Optional[_Reading], fallback: Tuple[Optional[str], Mapping[str, Any]],
          threshold: int, threshold_text: str, force: bool, now: float, wanted: _Groups) -> TokenPlan:
    claims = reading.claims if reading else {}
    expiry = expiry_facts(claims, now)
    expires_in = expiry["expires_in"]
    genuine = bool(reading and reading.genuine)
    admins = wanted.admins
    catalog_admin = None if admins is None or reading is None or reading.unreadable else bool(
        set(claims.get("groups", [])) & set(admins))
    # The order of the checks is the order of the reasons' importance.
    if reading is None:
        rotate, why = True, "missing"
    elif reading.unreadable is not None:
        rotate, why = True, "unreadable (%s)" % _short(reading.unreadable)
    elif not reading.valid:
        rotate, why = True, "does not verify with the cluster key (%s)" % _short(reading.reason or "unknown")
    elif catalog_admin is False:
        rotate, why = True, "its groups include none of the catalog admins (%s)" % _short(", ".join(admins))
    elif expires_in is None or expires_in < threshold:
        rotate, why = True, "expires within %s" % threshold_text
    elif force:
        rotate, why = True, "forced"
    else:
        rotate, why = False, "more than %s left" % threshold_text
    fallback_key, fallback_claims = fallback
    own = claims if genuine else {}
    keep_groups = list(own["groups"] if own.get("groups") else fallback_claims.get("groups") or [])
    if wanted.given:
        new_groups, new_groups_from = list(wanted.given), "system_token_groups"
    elif keep_groups:
        new_groups = keep_groups
        new_groups_from = "the current token" if own.get("groups") else "the token of %s" % fallback_key
    elif admins:
        new_groups, new_groups_from = list(admins), "the catalog admins"
    else:
        new_groups, new_groups_from = [], None
    return TokenPlan(
        key=key, present=reading is not None, subject=claims.get("sub"), issuer=claims.get("iss"),
        groups=list(claims.get("groups", [])), expires_at=expiry["expires_at"],
        issued_at=iso8601(claims["iat"]) if is_numeric_date(claims.get("iat")) else None,
        expires_in=expires_in, days_left=None if expires_in is None else round(expires_in / 86400, 1),
        keep_issuer=own["iss"] if "iss" in own else fallback_claims.get("iss"),
        keep_groups=keep_groups, valid=bool(reading and reading.valid), rotate=rotate, why=why,
        genuine=genuine, catalog_admin=catalog_admin, new_groups=new_groups, new_groups_from=new_groups_from)


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_LIMIT else text[:_SHOWN_LIMIT] + "..."


def _shown(value: Any) -> str:
    return "-" if value is None else _short(str(value))


def value_hash(value: str) -> str:
    """How a token is named in a marker, a report or a message: sha256 of its text, never the text."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def unfinished_rotation(marker: Optional[str], tokens: Mapping[str, Any]) -> Optional[dict]:
    """What the rotation marker on the token Secret says, or None when there is none.

    A marker is left when a rotation wrote the Secret but did not get to restart, wait and
    check (it was killed, the API server went away, the rollback could not finish): the
    workloads may still run the token(s) they started with. ``tokens`` is the Secret's data
    now; ``same_tokens`` says whether it still holds what that rotation wrote.
    """
    if marker is None:
        return None
    try:
        record = json.loads(marker)
    except ValueError:
        record = None
    record = record if isinstance(record, dict) else {}
    hashes = record.get("keys") if isinstance(record.get("keys"), dict) else {}
    keys = sorted(str(key) for key in hashes)
    started = record.get("started") if isinstance(record.get("started"), str) else None
    by = record.get("by") if isinstance(record.get("by"), str) else None
    same = bool(hashes) and all(isinstance(tokens.get(key), str) and value_hash(tokens[key]) == value
                                for key, value in hashes.items())
    summary = "a rotation of %s%s%s did not finish: %s" % (
        ", ".join(keys) or "the token(s)", " started %s" % _short(started) if started else "",
        " from %s" % _short(by) if by else "",
        "the Secret holds the token(s) it wrote, which the workloads may not run yet" if same
        else "the Secret changed since; the workloads may not run what it holds")
    return {"started": started, "by": by, "secret_keys": keys, "same_tokens": same, "summary": summary}
