# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics of a cluster's system token: the text, a node_exporter textfile, a Pushgateway.

The findings of a check (the plan of ``system_token_plan``: expiry, issue time, validity and
subject per Secret key) become samples in the classic text exposition format 0.0.4, which
node_exporter's textfile collector and the Pushgateway both read. Times are absolute Unix
timestamps (the time left is computed in the query, as x509-certificate-exporter does). Only
facts about tokens travel here, never a token.

A check that fails (the cluster or the Secret cannot be read) keeps the last good findings and
counts a read error, so alerts on a stale check or on expiry keep working from what was last
known. The counter lives in the metrics themselves: each run reads the previous value back from
the textfile or the Pushgateway and adds to it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import ssl
import stat
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit
from urllib.request import Request

from ._http import http_open, without_userinfo
from .errors import ClaimsError, FileWriteError, InputFileError, MetricsError
from .files import read_bounded, write_file_atomic
from .tokens import parse_duration, parse_time

try:
    import fcntl

    HAS_FCNTL = True
except ImportError:  # not on POSIX: textfiles are written without the lock
    HAS_FCNTL = False

EXPIRY = "okera_system_token_expiry_timestamp_seconds"
ISSUED = "okera_system_token_issued_timestamp_seconds"
VALID = "okera_system_token_valid"
LAST_CHECK = "okera_system_token_last_check_timestamp_seconds"
READ_ERRORS = "okera_system_token_read_errors_total"
ROTATE_BEFORE = "okera_system_token_rotate_before_seconds"
ALERT_BEFORE = "okera_system_token_alert_before_seconds"

# name -> (type, help), in the order they are written.
FAMILIES: Dict[str, Tuple[str, str]] = {
    EXPIRY: ("gauge", "Expiry (exp) of the system token under a Secret key, as a Unix timestamp."),
    ISSUED: ("gauge", "Issue time (iat) of the system token under a Secret key, as a Unix timestamp."),
    VALID: ("gauge", "1 when the token verifies with the cluster's own public key(s) and algorithm "
                     "and has not expired, else 0 (also when the key is missing or unreadable)."),
    LAST_CHECK: ("gauge", "Time of the last successful check of the token, as a Unix timestamp."),
    READ_ERRORS: ("counter", "Checks that could not read the token: the cluster or the Secret could "
                             "not be read, or the value is not a JWT."),
    ROTATE_BEFORE: ("gauge", "Rotation threshold of the cluster: a token with less left is rotated."),
    ALERT_BEFORE: ("gauge", "Alert threshold of the cluster: a token with less left fails the check."),
}
# Families that describe the token; a failed check keeps their last values.
FINDINGS = (EXPIRY, ISSUED, VALID, LAST_CHECK)
DEFAULT_JOB = "okera_system_token"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A token's sub is whatever its author wrote: long label values hurt Prometheus.
MAX_LABEL_VALUE = 256
MAX_ANSWER = 16 * 1024 * 1024  # bytes read from a Pushgateway's /api/v1/metrics at most


@dataclass(frozen=True)
class Sample:
    """One sample: a metric name, its labels (sorted pairs) and its value."""

    name: str
    labels: Tuple[Tuple[str, str], ...]
    value: float

    def label(self, name: str, default: str = "") -> str:
        return dict(self.labels).get(name, default)


def sample(name: str, labels: Mapping[str, Any], value: float) -> Sample:
    """A Sample with label values as bounded texts."""
    return Sample(name, tuple(sorted((key, _bounded(str(text))) for key, text in labels.items())), float(value))


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_LABEL_VALUE else text[:MAX_LABEL_VALUE - 3] + "..."


@dataclass(frozen=True)
class Target:
    """Whose token: the labels every series of one check carries."""

    cluster: str
    namespace: str
    secret: str

    def labels(self, **more: str) -> Dict[str, str]:
        return dict({"cluster": self.cluster, "namespace": self.namespace, "secret": self.secret}, **more)

    def owns(self, item: Sample) -> bool:
        """Whether a sample is this cluster's (any namespace and secret: those may have been renamed)."""
        return item.label("cluster") == self.cluster


# ---- the text exposition ----------------------------------------------------------------------

def escape_label_value(value: str) -> str:
    """A label value as the text format quotes it: backslash, double quote and newline escaped."""
    text = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be written
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(float(value))


def render(samples: Iterable[Sample]) -> str:
    """The exposition text: each family with samples, in FAMILIES order, samples sorted by labels."""
    by_name: Dict[str, List[Sample]] = {}
    for item in samples:
        if item.name not in FAMILIES:
            raise MetricsError("unknown metric %s" % item.name)
        by_name.setdefault(item.name, []).append(item)
    lines: List[str] = []
    for name, (kind, text) in FAMILIES.items():
        if name not in by_name:
            continue
        lines.append("# HELP %s %s" % (name, escape_help(text)))
        lines.append("# TYPE %s %s" % (name, kind))
        for item in sorted(set(by_name[name]), key=lambda entry: entry.labels):
            labels = ",".join('%s="%s"' % (key, escape_label_value(value)) for key, value in item.labels)
            lines.append("%s%s %s" % (name, "{%s}" % labels if labels else "", format_value(item.value)))
    return "\n".join(lines) + "\n" if lines else ""


def parse_text(text: str) -> List[Sample]:
    """The samples of an exposition text (comments skipped); lines that do not parse are left out.

    Reads back what render wrote (the previous textfile) and tolerates anything else.
    """
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parsed = _parse_line(line)
        if parsed is not None:
            found.append(parsed)
    return found


def _parse_line(line: str) -> Optional[Sample]:
    position = 0
    while position < len(line) and (line[position].isalnum() or line[position] in "_:"):
        position += 1
    name = line[:position]
    if not name or name[0].isdigit():
        return None
    labels: Dict[str, str] = {}
    if position < len(line) and line[position] == "{":
        parsed = _parse_labels(line, position + 1)
        if parsed is None:
            return None
        labels, position = parsed
    fields = line[position:].split()
    if not fields or len(fields) > 2:
        return None
    try:
        value = float(fields[0])
    except ValueError:
        return None
    return Sample(name, tuple(sorted(labels.items())), value)


_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_labels(line: str, position: int) -> Optional[Tuple[Dict[str, str], int]]:
    """Label pairs from position (just after "{") to the closing "}"; (labels, position after it)."""
    labels: Dict[str, str] = {}
    while True:
        while position < len(line) and line[position] in " ,":
            position += 1
        if position < len(line) and line[position] == "}":
            return labels, position + 1
        start = position
        while position < len(line) and (line[position].isalnum() or line[position] == "_"):
            position += 1
        key = line[start:position]
        if not key or line[position:position + 2] != '="':
            return None
        position += 2
        value = []
        while position < len(line) and line[position] != '"':
            if line[position] == "\\" and position + 1 < len(line):
                value.append(_UNESCAPE.get(line[position + 1], "\\" + line[position + 1]))
                position += 2
            else:
                value.append(line[position])
                position += 1
        if position >= len(line):
            return None
        labels[key] = "".join(value)
        position += 1


# ---- from a check to samples --------------------------------------------------------------------

def _epoch(value: Any) -> Optional[float]:
    if value is None:
        return None
    try:
        return float(parse_time(value))
    except ClaimsError:
        return None


def _is_unreadable(entry: Mapping[str, Any]) -> bool:
    return bool(entry.get("present")) and str(entry.get("why") or "").startswith("unreadable")


def _previous_errors(previous: Iterable[Sample], target: Target) -> Dict[str, float]:
    return {item.label("key"): item.value for item in previous
            if item.name == READ_ERRORS and target.owns(item)
            and (item.label("namespace"), item.label("secret")) == (target.namespace, target.secret)}


def _thresholds(target: Target, thresholds: Mapping[str, Optional[float]]) -> List[Sample]:
    return [sample(name, target.labels(), value) for name, value in thresholds.items() if value is not None]


def check_samples(target: Target, plan: Sequence[Mapping[str, Any]], previous: Sequence[Sample],
                  now: Optional[float] = None, rotate_before: Optional[float] = None,
                  alert_before: Optional[float] = None) -> List[Sample]:
    """This cluster's samples after a successful check: one series per Secret key of the plan.

    ``plan`` is the ``plan`` of system_token_plan (``key``, ``subject``, ``valid``, ``expires_at``,
    ``issued_at``, ``present``, ``why``); ``previous`` holds the last samples (for the read-error
    counter, which counts unreadable tokens too).
    """
    now = time.time() if now is None else now
    errors = _previous_errors(previous, target)
    samples = []
    for number, entry in enumerate(plan):
        if not isinstance(entry, Mapping) or not entry.get("key"):
            raise MetricsError("plan entry %d has no key: pass the plan of okera.auth.system_token_plan" % number)
        key = str(entry["key"])
        token_labels = target.labels(key=key, subject=entry.get("subject") or "")
        samples.append(sample(VALID, token_labels, 1 if entry.get("valid") else 0))
        samples.append(sample(LAST_CHECK, token_labels, now))
        for name, field in ((EXPIRY, "expires_at"), (ISSUED, "issued_at")):
            moment = _epoch(entry.get(field))
            if moment is not None:
                samples.append(sample(name, token_labels, moment))
        samples.append(sample(READ_ERRORS, target.labels(key=key),
                              errors.get(key, 0) + (1 if _is_unreadable(entry) else 0)))
    return samples + _thresholds(target, {ROTATE_BEFORE: rotate_before, ALERT_BEFORE: alert_before})


def failure_samples(target: Target, secret_keys: Sequence[str], previous: Sequence[Sample],
                    rotate_before: Optional[float] = None,
                    alert_before: Optional[float] = None) -> List[Sample]:
    """This cluster's samples after a failed check: the last findings kept, a read error counted per key."""
    errors = _previous_errors(previous, target)
    kept = [item for item in previous if item.name in FINDINGS and target.owns(item)
            and (item.label("namespace"), item.label("secret")) == (target.namespace, target.secret)]
    counted = [sample(READ_ERRORS, target.labels(key=key), errors.get(key, 0) + 1) for key in secret_keys]
    given = {ROTATE_BEFORE: rotate_before, ALERT_BEFORE: alert_before}
    thresholds = _thresholds(target, given) + [
        item for item in previous if item.name in given and given[item.name] is None and target.owns(item)]
    return kept + counted + thresholds


def findings(samples: Iterable[Sample]) -> frozenset:
    """What a check found, for deciding whether anything changed: every sample but the time of the check."""
    return frozenset((item.name, item.labels, None if item.name == LAST_CHECK else item.value) for item in samples)


def duration_or_none(value: Optional[str]) -> Optional[float]:
    return None if value in (None, "") else float(parse_duration(value))


# ---- node_exporter textfile ---------------------------------------------------------------------

@dataclass
class TextfileResult:
    """The file's text before and after, this cluster's samples before and after, and whether a finding changed."""

    path: str
    before: str
    after: str
    changed: bool
    previous: List[Sample]
    samples: List[Sample]


def update_textfile(path: str, target: Target, build: Callable[[List[Sample]], List[Sample]],
                    mode: int = 0o644, check_mode: bool = False) -> TextfileResult:
    """Replace this cluster's series in the textfile at ``path``, keeping the other clusters'.

    ``build(previous)`` gets the file's samples of this cluster and returns the new ones. The file
    is replaced atomically (a temp file with its final mode in the same directory, then a rename:
    node_exporter reads only ``*.prom`` files, so it never sees the temp file), under an exclusive
    lock of the directory, so clusters checked in parallel do not drop each other's series.
    ``changed`` is whether a finding or the file's mode changed (the time of the check alone does not count).
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise MetricsError("the directory of the metrics textfile %s does not exist: create it (node_exporter's "
                           "--collector.textfile.directory)" % path)
    lock = None
    if not check_mode and HAS_FCNTL:
        lock = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        before = _read_text(path)
        try:
            mode_changed = bool(before) and stat.S_IMODE(os.stat(path).st_mode) != mode
        except OSError:
            mode_changed = False
        everything = parse_text(before)
        mine = [item for item in everything if target.owns(item) and item.name in FAMILIES]
        others = [item for item in everything if not target.owns(item) and item.name in FAMILIES]
        new = build(mine)
        after = render(others + new)
        changed = findings(mine) != findings(new) or mode_changed
        if not check_mode and (after != before or mode_changed):
            try:
                write_file_atomic(path, after.encode("utf-8"), mode=mode)
            except FileWriteError as error:
                raise MetricsError("metrics textfile: %s" % error) from None
        return TextfileResult(path, before, after, changed, mine, new)
    finally:
        if lock is not None:
            os.close(lock)  # releases the lock


def _read_text(path: str) -> str:
    if not os.path.lexists(path):
        return ""
    try:
        return read_bounded(path, "metrics text").decode("utf-8", "replace")
    except InputFileError as error:
        raise MetricsError(str(error)) from None


# ---- Pushgateway --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pushgateway:
    """Where and how to push: the base URL, the job, TLS and basic-auth settings."""

    url: str
    job: str = DEFAULT_JOB
    username: Optional[str] = None
    password: Optional[str] = None
    ca_cert: Optional[str] = None
    validate_certs: bool = True
    timeout: float = 10

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MetricsError("Pushgateway URL %s is not an http:// or https:// URL" % without_userinfo(self.url))
        if parts.username or parts.password:
            raise MetricsError("the Pushgateway URL carries credentials: give them as the username and "
                               "password options instead, so they stay out of logs")

    def group_url(self, grouping: Mapping[str, str]) -> str:
        """<url>/metrics/job/<job>/<label>/<value>...; values with a "/" (or empty) in base64url."""
        path = "/metrics/" + _group_pair("job", self.job)
        for name, value in grouping.items():
            path += "/" + _group_pair(name, value)
        return self.url.rstrip("/") + path

    def _open(self, request: Request):
        if self.username is not None:
            credentials = ("%s:%s" % (self.username, self.password or "")).encode("utf-8")
            request.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode("ascii"))
        context = None
        if request.full_url.startswith("https:"):
            context = ssl.create_default_context(cafile=self.ca_cert)
            if not self.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return http_open(request.get_method(), request.full_url, dict(request.header_items()), self.timeout,
                         context=context, data=request.data)

    def push(self, grouping: Mapping[str, str], text: str, replace: bool = True) -> None:
        """PUT (replace the group) or POST (replace only the families in ``text``)."""
        url = self.group_url(grouping)
        request = Request(url, data=text.encode("utf-8"), method="PUT" if replace else "POST",
                          headers={"Content-Type": TEXT_CONTENT_TYPE, "User-Agent": "okera.auth"})
        try:
            with self._open(request) as answer:
                answer.read()
        except HTTPError as error:
            detail = " ".join(error.read(300).decode("utf-8", "replace").split())
            raise MetricsError("the Pushgateway at %s answered %s %s%s" % (
                without_userinfo(self.url), error.code, error.reason, ": " + detail if detail else "")) from None
        except (URLError, OSError, ValueError) as error:
            raise MetricsError("cannot push to the Pushgateway at %s: %s" % (without_userinfo(self.url), _reason(error))) from None

    def group_samples(self, grouping: Mapping[str, str]) -> List[Sample]:
        """The samples the Pushgateway holds for the group (its /api/v1/metrics), without job and instance."""
        request = Request(self.url.rstrip("/") + "/api/v1/metrics",
                          headers={"Accept": "application/json", "User-Agent": "okera.auth"})
        try:
            with self._open(request) as answer:
                document = json.loads(answer.read(MAX_ANSWER + 1)[:MAX_ANSWER].decode("utf-8"))
        except HTTPError as error:
            raise MetricsError("the Pushgateway at %s answered %s %s to GET /api/v1/metrics" % (
                without_userinfo(self.url), error.code, error.reason)) from None
        except (URLError, OSError, ValueError) as error:
            raise MetricsError("cannot read the Pushgateway at %s: %s" % (without_userinfo(self.url), _reason(error))) from None
        wanted = dict(grouping, job=self.job)
        found = []
        for group in (document.get("data") or []) if isinstance(document, dict) else []:
            labels = group.get("labels") if isinstance(group, dict) else None
            if not isinstance(labels, dict) or _without_empty_instance(labels) != wanted:
                continue
            for name, family in group.items():
                if name not in FAMILIES or not isinstance(family, dict):
                    continue
                for metric in family.get("metrics") or []:
                    try:
                        labels = {key: str(value) for key, value in (metric.get("labels") or {}).items()
                                  if key not in ("job", "instance")}
                        found.append(Sample(name, tuple(sorted(labels.items())), float(metric["value"])))
                    except (KeyError, TypeError, ValueError, AttributeError):
                        continue
        return found


def _without_empty_instance(labels: Mapping[str, Any]) -> Dict[str, Any]:
    # The Pushgateway gives metrics pushed without an instance an empty one.
    return {key: value for key, value in labels.items() if not (key == "instance" and value == "")}


def _group_pair(name: str, value: str) -> str:
    if value == "" or "/" in value:
        encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
        return "%s@base64/%s" % (name, encoded or "=")
    return "%s/%s" % (name, quote(value, safe=""))


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return " ".join(str(reason).split())[:300]
