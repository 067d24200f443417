# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of a cluster's system tokens to rotate, and why.

The role okera.auth.system_token reads the token Secret and the cluster's
configuration Secret; what to do with the token under each configured key is
decided here, from that plain data, and reported without any token text.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, List, Mapping, Optional, Sequence, Union

from .errors import KeyLoadError, TokenFormatError
from .keys import DEFAULT_ALGORITHM, PublicKeyEntry, load_public_keys, normalize_algorithm, public_key_pem
from .tokens import decode_unverified, expiry_facts, parse_duration, verify

# What to set when the cluster's configuration holds no public key (the role's variables).
CONFIG_HINT = ("set system_token_config_secret_name / system_token_config_public_key_key, or give "
               "the cluster's public key(s) in system_token_public_keys")
# Reasons quote a token's header values (alg, crit) and the summary its sub and iss: a hostile
# token must not flood the report.
_SHOWN_LIMIT = 200


@dataclass(frozen=True)
class ClusterKeys:
    """The public keys and the algorithm a cluster verifies tokens with."""

    entries: Sequence[PublicKeyEntry]
    algorithm: str

    def public_key_pems(self) -> List[str]:
        """Each key as SubjectPublicKeyInfo PEM: only public halves, whatever form they came in."""
        return [public_key_pem(entry.key) for entry in self.entries]


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
    if not texts:
        if config is None:
            raise KeyLoadError("%s does not exist: %s" % (config_name, CONFIG_HINT))
        if config_public_key_key not in config:
            raise KeyLoadError("%s has no key %s: %s" % (config_name, config_public_key_key, CONFIG_HINT))
        texts = [config[config_public_key_key]]
        configured_algorithm = config.get(config_algorithm_key)
    chosen = next((str(name).strip() for name in (algorithm, configured_algorithm)
                   if name is not None and str(name).strip()), DEFAULT_ALGORITHM)
    entries = [entry for text in texts for entry in load_public_keys(text)]
    return ClusterKeys(entries=tuple(entries), algorithm=normalize_algorithm(chosen))


@dataclass(frozen=True)
class TokenPlan:
    """What to do with the token under one Secret key, and what is known of it; never the token."""

    key: str
    present: bool
    subject: Optional[str]
    issuer: Optional[str]
    groups: List[str]
    expires_at: Optional[str]
    expires_in: Optional[int]
    days_left: Optional[float]
    # The new token's iss and groups unless others are given: this token's, else another's.
    keep_issuer: Optional[str]
    keep_groups: List[str]
    valid: bool
    rotate: bool
    why: str

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


def plan_rotation(tokens: Mapping[str, Any], secret_keys: Sequence[str], keys: ClusterKeys,
                  rotate_before: Union[str, int], force: bool = False,
                  now: Optional[float] = None) -> List[TokenPlan]:
    """One plan per key of ``secret_keys``, in order: rotate the token when it is missing,
    unreadable, does not verify with ``keys``, expires within ``rotate_before`` (or has no
    expiry), or when ``force``; else keep it.

    ``tokens`` maps Secret keys to their values (keys not configured are ignored). ``now``
    (epoch seconds) sets the clock of the expiry and the threshold; signatures and ``exp``
    are checked by PyJWT against the real clock. Raises ClaimsError for a bad ``rotate_before``.
    """
    threshold = parse_duration(rotate_before)
    threshold_text = str(rotate_before).strip()
    now = time.time() if now is None else now
    readings = {key: _read(tokens[key], keys) for key in secret_keys if key in tokens}
    # A key without a readable token (or a token without iss or groups) takes them from the
    # first readable token, in the order of secret_keys.
    readable = [reading.claims for reading in readings.values() if reading.unreadable is None]
    fallback = readable[0] if readable else {}
    return [_plan(key, readings.get(key), fallback, threshold, threshold_text, force, now)
            for key in secret_keys]


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
    return _Reading(claims=claims, valid=verdict.valid, reason=verdict.reason)


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


def _plan(key: str, reading: Optional[_Reading], fallback: Mapping[str, Any], threshold: int,
          threshold_text: str, force: bool, now: float) -> TokenPlan:
    claims = reading.claims if reading else {}
    expiry = expiry_facts(claims, now)
    expires_in = expiry["expires_in"]
    # The order of the checks is the order of the reasons' importance.
    if reading is None:
        rotate, why = True, "missing"
    elif reading.unreadable is not None:
        rotate, why = True, "unreadable (%s)" % _short(reading.unreadable)
    elif not reading.valid:
        rotate, why = True, "does not verify with the cluster key (%s)" % _short(reading.reason or "unknown")
    elif expires_in is None or expires_in < threshold:
        rotate, why = True, "expires within %s" % threshold_text
    elif force:
        rotate, why = True, "forced"
    else:
        rotate, why = False, "more than %s left" % threshold_text
    return TokenPlan(
        key=key, present=reading is not None, subject=claims.get("sub"), issuer=claims.get("iss"),
        groups=list(claims.get("groups", [])), expires_at=expiry["expires_at"],
        expires_in=expires_in, days_left=None if expires_in is None else round(expires_in / 86400, 1),
        keep_issuer=claims["iss"] if "iss" in claims else fallback.get("iss"),
        keep_groups=list(claims["groups"] if "groups" in claims else fallback.get("groups", [])),
        valid=bool(reading and reading.valid), rotate=rotate, why=why)


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_LIMIT else text[:_SHOWN_LIMIT] + "..."


def _shown(value: Any) -> str:
    return "-" if value is None else _short(str(value))
