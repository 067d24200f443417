# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a rotation of a cluster's signing key pair stands, and what to do next.

A rotation replaces the key pair that signs the cluster's tokens without a moment in which a
valid token is refused. It goes through stages, recorded in an annotation on the cluster's
configuration Secret (the one holding ``JWT_PUBLIC_KEY``):

1. ``generate``: a new (pending) key pair is made where the keys are kept;
2. ``publish``: its public key joins ``JWT_PUBLIC_KEY`` beside the old one; the services restart
   and are checked (stage ``publishing``, then ``published``);
3. ``switch``: the signers take the new private key: the system token is re-minted with it, the
   key store's current key becomes the new one (``switching``, then ``switched`` with the time);
4. ``retire``: once the grace period after the switch is over (every token the old key signed
   has expired), the old public key leaves ``JWT_PUBLIC_KEY`` and the services restart again
   (``retiring``); then the annotation is removed.

The decision is made here from plain data (the configuration's key list, the annotation, the
keys in the store) and reported with key fingerprints (RFC 7638 thumbprints), never key text.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, List, Optional, Union

from .errors import KeyLoadError, OkeraAuthError
from .keys import jwk_thumbprint, load_private_key, load_public_keys, public_key_pem
from .tokens import iso8601, parse_duration, parse_time

# The annotation on the configuration Secret while a rotation is under way. Its value is JSON:
# {"stage", "old", "new" (fingerprints), "old_public_key", "new_public_key" (PEM), "started",
#  "published", "switched" (ISO 8601), "by" (inventory host)}.
ROTATION_ANNOTATION = "okera.auth/signing-key-rotation"
STAGES = ("publishing", "published", "switching", "switched", "retiring")
DEFAULT_GRACE_PERIOD = "24h"
# Okera's JWT_PUBLIC_KEY: several keys, comma-separated.
KEY_SEPARATOR = ","


class SigningKeyRotationError(OkeraAuthError):
    """The rotation cannot go on from where it stands, with what to look at."""


def fingerprint(key: Any) -> str:
    """How a key is named in reports and in the annotation: the RFC 7638 thumbprint of its public half."""
    public = key.public_key() if hasattr(key, "public_key") else key
    return jwk_thumbprint(public)


def short(fingerprint_text: Optional[str]) -> str:
    return "-" if not fingerprint_text else fingerprint_text[:12]


@dataclass(frozen=True)
class StoredKey:
    """A private key of the store, known by its fingerprint and public half only."""

    fingerprint: str
    public_key: str

    @classmethod
    def load(cls, text: Optional[str], what: str) -> Optional["StoredKey"]:
        if text is None or not str(text).strip():
            return None
        try:
            key = load_private_key(text)
        except KeyLoadError as error:
            raise KeyLoadError("the %s signing key of the key store cannot be used: %s" % (what, error)) from None
        return cls(fingerprint=fingerprint(key), public_key=public_key_pem(key.public_key()))


@dataclass(frozen=True)
class RotationPlan:
    """What a run does: ``action`` is generate, publish, switch, wait or retire."""

    stage: str
    action: str
    old: Optional[str]
    new: Optional[str]
    cluster_keys: List[str]
    publish_keys: Optional[str]
    retire_keys: Optional[str]
    rollback_keys: Optional[str]
    marker: dict
    switched_at: Optional[str]
    retire_due: Optional[str]
    retire_in: Optional[int]
    promote: bool
    summary: str

    def as_dict(self) -> dict:
        return asdict(self)


def _join(pems: List[str]) -> str:
    return KEY_SEPARATOR.join(pems)


def _read_marker(marker: Optional[str]) -> Optional[dict]:
    if marker is None or not str(marker).strip():
        return None
    try:
        record = json.loads(marker)
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("stage") not in STAGES or not all(
            isinstance(record.get(name), str) and record.get(name) for name in ("old", "new", "old_public_key",
                                                                                "new_public_key")):
        raise SigningKeyRotationError(
            "the annotation %s on the configuration Secret is not one this collection writes (stage one of %s, "
            "fingerprints and public keys of old and new): remove it after checking JWT_PUBLIC_KEY by hand"
            % (ROTATION_ANNOTATION, ", ".join(STAGES)))
    return record


def holds_private_key(text: Any) -> bool:
    """Whether key text given as public holds private material: a PEM or OpenSSH private key (as
    given or in base64), or a JWK with its private member ``d``."""
    raw = str(text or "").strip()
    if "PRIVATE KEY" in raw:
        return True
    try:
        if b"PRIVATE KEY" in base64.b64decode("".join(raw.split()), validate=True):
            return True
    except (binascii.Error, ValueError):
        pass
    try:
        document = json.loads(raw)
    except ValueError:
        return False
    jwks = document.get("keys") if isinstance(document, dict) and isinstance(document.get("keys"), list) else [document]
    return any(isinstance(jwk, dict) and "d" in jwk for jwk in jwks)


def plan_rotation(cluster_public_keys: str, marker: Optional[str], current_key: Optional[str],
                  pending_key: Optional[str] = None, previous_key: Optional[str] = None,
                  grace_period: Union[str, int] = DEFAULT_GRACE_PERIOD, now: Union[None, int, str] = None,
                  host: str = "") -> RotationPlan:
    """Decide the next step of the rotation from the cluster's ``JWT_PUBLIC_KEY`` text, the
    annotation's value and the key store's current, pending and previous private keys.

    Raises SigningKeyRotationError (or KeyLoadError) with one line when the store and the
    cluster disagree in a way no step can mend without a person looking.
    """
    if not cluster_public_keys or not str(cluster_public_keys).strip():
        raise SigningKeyRotationError("the cluster's JWT_PUBLIC_KEY is empty: there is no key to rotate from")
    entries = load_public_keys(cluster_public_keys)
    listed = [public_key_pem(entry.key).strip() for entry in entries]
    listed_fps = [fingerprint(entry.key) for entry in entries]
    current = StoredKey.load(current_key, "current")
    pending = StoredKey.load(pending_key, "pending")
    previous = StoredKey.load(previous_key, "previous")
    grace = parse_duration(grace_period)
    moment = int(time.time()) if now is None or now == "" else parse_time(now)
    record = _read_marker(marker)
    if current is None:
        raise SigningKeyRotationError("the key store holds no current signing key: give the key the cluster's "
                                      "tokens are signed with now")
    if record is None:
        return _plan_start(listed, listed_fps, current, pending, moment, host)
    stage, old, new = record["stage"], record["old"], record["new"]
    held = {key.fingerprint for key in (current, pending, previous) if key}
    where = "stage %s (old %s, new %s)" % (stage, short(old), short(new))
    if new not in held:
        raise SigningKeyRotationError(
            "the rotation at %s needs the new private key, which the key store no longer holds (it has %s): "
            "put it back, or restore JWT_PUBLIC_KEY and remove the annotation %s" % (
                where, ", ".join(sorted(short(fp) for fp in held)), ROTATION_ANNOTATION))
    common = dict(old=old, new=new, cluster_keys=listed_fps, marker=record, switched_at=record.get("switched"))
    without_new = _join([pem for pem, fp in zip(listed, listed_fps) if fp != new])
    with_new = _join(listed + ([record["new_public_key"].strip()] if new not in listed_fps else []))
    with_old = _join(([record["old_public_key"].strip()] if old not in listed_fps else []) + listed)
    without_old = _join([pem for pem, fp in zip(listed, listed_fps) if fp != old])
    if stage == "publishing":
        return RotationPlan(stage=stage, action="publish", publish_keys=with_new, retire_keys=None,
                            rollback_keys=without_new, retire_due=None, retire_in=None, promote=False,
                            summary="%s did not finish: publish the new key again, restart and check" % where, **common)
    if new not in listed_fps:
        raise SigningKeyRotationError(
            "the rotation at %s finds the new key missing from JWT_PUBLIC_KEY (it lists %s): services would refuse "
            "its tokens; add it back or remove the annotation %s" % (
                where, ", ".join(short(fp) for fp in listed_fps), ROTATION_ANNOTATION))
    if stage in ("published", "switching"):
        if stage == "published" and current.fingerprint != old:
            raise SigningKeyRotationError("the rotation at %s finds the key store's current key is %s, neither old nor "
                                          "new" % (where, short(current.fingerprint)))
        return RotationPlan(stage=stage, action="switch", publish_keys=None, retire_keys=None, rollback_keys=None,
                            retire_due=None, retire_in=None, promote=current.fingerprint != new,
                            summary="%s: %s the signers to the new key" % (
                                where, "switch" if stage == "published" else "finish switching"), **common)
    if current.fingerprint != new:
        raise SigningKeyRotationError("the rotation at %s finds the key store's current key is %s, not the new one: "
                                      "the old key cannot be retired" % (where, short(current.fingerprint)))
    if stage == "retiring":
        return RotationPlan(stage=stage, action="retire", publish_keys=None, retire_keys=without_old,
                            rollback_keys=with_old, retire_due=None, retire_in=0, promote=False,
                            summary="%s did not finish: remove the old key again, restart and check" % where, **common)
    switched = record.get("switched")
    try:
        due = parse_time(switched) + grace
    except OkeraAuthError:
        raise SigningKeyRotationError("the annotation %s at %s has no switch time: set \"switched\" to when the "
                                      "signers took the new key (ISO 8601)" % (ROTATION_ANNOTATION, where)) from None
    left = due - moment
    if left > 0:
        return RotationPlan(stage=stage, action="wait", publish_keys=None, retire_keys=None, rollback_keys=None,
                            retire_due=iso8601(due), retire_in=left, promote=False,
                            summary="%s: the old key stays listed until %s (grace period %s after the switch at %s; "
                                    "%s left): run again then" % (where, iso8601(due), _duration(grace), switched,
                                                                  _duration(left)), **common)
    return RotationPlan(stage=stage, action="retire", publish_keys=None, retire_keys=without_old, rollback_keys=with_old,
                        retire_due=iso8601(due), retire_in=0, promote=False,
                        summary="%s: the grace period ended at %s: remove the old key, restart and check"
                                % (where, iso8601(due)), **common)


def _plan_start(listed: List[str], listed_fps: List[str], current: StoredKey, pending: Optional[StoredKey],
                moment: int, host: str) -> RotationPlan:
    if current.fingerprint not in listed_fps:
        raise SigningKeyRotationError(
            "the key store's current signing key %s is not in the cluster's JWT_PUBLIC_KEY (%s): the store does not "
            "belong to this cluster, nothing was changed" % (short(current.fingerprint),
                                                             ", ".join(short(fp) for fp in listed_fps)))
    if pending is None:
        return RotationPlan(stage="idle", action="generate", old=current.fingerprint, new=None, cluster_keys=listed_fps,
                            publish_keys=None, retire_keys=None, rollback_keys=None, marker={}, switched_at=None,
                            retire_due=None, retire_in=None, promote=False,
                            summary="no rotation under way: make a new key pair to replace %s" % short(current.fingerprint))
    if pending.fingerprint == current.fingerprint:
        raise SigningKeyRotationError("the key store's pending key is its current key %s: remove the pending key"
                                      % short(current.fingerprint))
    marker = {"stage": "publishing", "old": current.fingerprint, "new": pending.fingerprint,
              "old_public_key": current.public_key.strip(), "new_public_key": pending.public_key.strip(),
              "started": iso8601(moment), "by": host}
    with_new = _join(listed + ([pending.public_key.strip()] if pending.fingerprint not in listed_fps else []))
    without_new = _join([pem for pem, fp in zip(listed, listed_fps) if fp != pending.fingerprint])
    return RotationPlan(stage="idle", action="publish", old=current.fingerprint, new=pending.fingerprint,
                        cluster_keys=listed_fps, publish_keys=with_new, retire_keys=None, rollback_keys=without_new,
                        marker=marker, switched_at=None, retire_due=None, retire_in=None, promote=False,
                        summary="no rotation under way: publish the new key %s beside %s, restart and check" % (
                            short(pending.fingerprint), short(current.fingerprint)))


def _duration(seconds: int) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = "".join("%d%s" % (value, unit) for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value)
    return text or "%ds" % seconds
