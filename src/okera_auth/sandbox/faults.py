# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults the sandbox's API server injects, to rehearse a rotation against a failing cluster.

Rules live in ``STATE_DIR/faults.json`` (written by ``okera-auth-sandbox fault`` or by hand) and
are read again whenever that file changes, so a test can change them while a playbook runs::

    {"rules": [
      {"method": "PATCH", "path": "/api/v1/namespaces/default/secrets/secrets", "status": 409, "times": 20},
      {"method": "GET", "path_regex": "^/apis/apps/", "delay": 3},
      {"method": "PATCH", "path": "/apis/apps/v1/", "kill": true}
    ]}

A rule matches a request by ``method`` (``*`` or absent: any) and ``path`` (a prefix of the
path, without the query) or ``path_regex`` (searched in it). What it does:

- ``status``: answer that code with a Kubernetes ``Status`` body (409 Conflict, 429
  TooManyRequests with ``Retry-After``, 500, 503, 504, or any other 4xx/5xx); ``retry_after``
  sets the ``Retry-After`` header (429: 1 unless given);
- ``drop``: close the connection without an answer (a client sees the server go away);
- ``kill``: drop this request and every later one, whatever it is, as a killed API server looks
  to a client, until the rules change;
- ``delay``: wait that many seconds first (alone: then serve the request as usual).

``processed: true`` (with ``drop`` or ``kill``) carries the request out before the answer is
lost: a write reaches the store, the client never learns it (not meant for watches, whose answer
only ends with their timeout). ``after: N`` lets the first N
matching requests through; ``times: M`` then acts on M of them (absent: on every later one).
Each rule counts the requests it matches, whether or not an earlier rule acted on them; the
first rule in its window acts. Counts start again when the file changes.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, Dict, List, Optional, Tuple

from okera_auth.module_utils.errors import shown
from okera_auth.module_utils.files import write_file_atomic
from .errors import ApiError, SandboxError

FAULTS_FILE = "faults.json"
METHODS = ("*", "GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_RETRY_AFTER = 1
_FIELDS = ("method", "path", "path_regex", "status", "retry_after", "message", "delay", "drop", "kill",
           "processed", "after", "times")
# The reason and message a real API server gives with each code.
_STATUS_TEXT = {
    409: ("Conflict", "Operation cannot be fulfilled on {what}: the object has been modified; please apply your "
                      "changes to the latest version and try again"),
    422: ("Invalid", "the object is invalid"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    502: ("InternalError", "Internal error occurred: bad gateway"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may still be "
                     "processing the request"),
}


@dataclass(frozen=True)
class FaultRule:
    """One rule of faults.json; see the module's documentation."""

    method: str = "*"
    path: Optional[str] = None
    path_regex: Optional[str] = None
    status: Optional[int] = None
    retry_after: Optional[int] = None
    message: Optional[str] = None
    delay: float = 0.0
    drop: bool = False
    kill: bool = False
    processed: bool = False
    after: int = 0
    times: Optional[int] = None

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        if self.path is not None and not path.startswith(self.path):
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None

    def acts_on(self, count: int) -> bool:
        """Whether the ``count``-th matching request (from 1) is in the rule's window."""
        return count > self.after and (self.times is None or count <= self.after + self.times)

    def as_dict(self) -> Dict[str, Any]:
        defaults = FaultRule()
        return {name: getattr(self, name) for name in _FIELDS if getattr(self, name) != getattr(defaults, name)
                or name == "method"}

    def describe(self) -> str:
        where = self.path if self.path is not None else ("~" + self.path_regex if self.path_regex else "*")
        actions = []
        if self.delay:
            actions.append("delay %gs" % self.delay)
        if self.status:
            actions.append("answer %d" % self.status)
        if self.drop or self.kill:
            actions.append(("kill the server" if self.kill else "drop the connection")
                           + (" after carrying it out" if self.processed else ""))
        window = "" if not self.after else " after %d match(es)" % self.after
        if self.times is not None:
            window += " %d time(s)" % self.times
        elif not self.kill:
            window += " forever"
        return "%s %s: %s%s" % (self.method, where, ", then ".join(actions), window)


def _number(rule: Dict[str, Any], name: str, kind: type, minimum: float) -> Any:
    value = rule.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        wanted = "a whole number" if kind is int else "a number"
        raise SandboxError("fault rule %s must be %s, not %s" % (name, wanted, shown(value)))
    if value < minimum:
        raise SandboxError("fault rule %s must be %g or more, not %s" % (name, minimum, shown(value)))
    return kind(value)


def parse_rule(raw: Any) -> FaultRule:
    """A FaultRule from its JSON object; SandboxError (one line) if it is not a valid rule."""
    if not isinstance(raw, dict):
        raise SandboxError("a fault rule must be an object, not %s" % type(raw).__name__)
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise SandboxError("unknown field(s) of a fault rule: %s (known: %s)" % (", ".join(unknown), ", ".join(_FIELDS)))
    method = str(raw.get("method") or "*").upper()
    if method not in METHODS:
        raise SandboxError("fault rule method must be one of %s, not %s" % (", ".join(METHODS), shown(raw.get("method"))))
    path, regex = raw.get("path"), raw.get("path_regex")
    if path is not None and regex is not None:
        raise SandboxError("a fault rule takes path (a prefix) or path_regex, not both")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise SandboxError("fault rule path must be a path prefix starting with /, not %s" % shown(path))
    if regex is not None:
        try:
            re.compile(str(regex))
        except re.error as error:
            raise SandboxError("fault rule path_regex %s is not a regular expression: %s" % (shown(regex), error)) from None
    status = _number(raw, "status", int, 400)
    if status is not None and status > 599:
        raise SandboxError("fault rule status must be a 4xx or 5xx code, not %d" % status)
    flags = {name: raw.get(name, False) for name in ("drop", "kill", "processed")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise SandboxError("fault rule %s must be true or false, not %s" % (name, shown(value)))
    delay = _number(raw, "delay", float, 0) or 0.0
    if sum((status is not None, flags["drop"], flags["kill"])) > 1:
        raise SandboxError("a fault rule does one of status, drop and kill (with an optional delay before it)")
    if status is None and not flags["drop"] and not flags["kill"] and not delay:
        raise SandboxError("a fault rule needs status, drop, kill or delay")
    if flags["processed"] and not (flags["drop"] or flags["kill"]):
        raise SandboxError("fault rule processed goes with drop or kill (the request is carried out, the answer lost)")
    retry_after = _number(raw, "retry_after", int, 0)
    if retry_after is not None and status is None:
        raise SandboxError("fault rule retry_after goes with status (a Retry-After header of the answer)")
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise SandboxError("fault rule message must be a string")
    return FaultRule(method=method, path=path, path_regex=None if regex is None else str(regex), status=status,
                     retry_after=retry_after, message=message, delay=delay, drop=flags["drop"], kill=flags["kill"],
                     processed=flags["processed"], after=_number(raw, "after", int, 0) or 0,
                     times=_number(raw, "times", int, 0))


def parse_rules(document: Any) -> List[FaultRule]:
    """The rules of a faults.json document: {"rules": [...]} or the bare list."""
    rules = document.get("rules") if isinstance(document, dict) else document
    if not isinstance(rules, list):
        raise SandboxError('faults must be {"rules": [...]} or a list of rules')
    found = []
    for number, raw in enumerate(rules, 1):
        try:
            found.append(parse_rule(raw))
        except SandboxError as error:
            raise SandboxError("rule %d: %s" % (number, error)) from None
    return found


def read_rules(path: str) -> List[FaultRule]:
    """The rules in the file at ``path`` (none when it does not exist)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise SandboxError("cannot read %s: %s" % (path, error.strerror)) from None
    if not text.strip():
        return []
    try:
        document = json.loads(text)
    except ValueError as error:
        raise SandboxError("%s is not JSON: %s" % (path, error)) from None
    try:
        return parse_rules(document)
    except SandboxError as error:
        raise SandboxError("%s: %s" % (path, error)) from None


def write_rules(path: str, rules: List[FaultRule]) -> None:
    """Replace the file's rules (atomically: a running server never reads half a file)."""
    text = json.dumps({"rules": [rule.as_dict() for rule in rules]}, indent=1) + "\n"
    write_file_atomic(path, text.encode("utf-8"), mode=0o600)


def status_error(rule: FaultRule, path: str) -> ApiError:
    """The ApiError (a Kubernetes Status) a ``status`` rule answers with."""
    code = int(rule.status or 500)
    reason, message = _STATUS_TEXT.get(code, (None, None))
    if reason is None:
        try:
            known = HTTPStatus(code)
            reason, message = "".join(word.title() for word in known.name.split("_")), known.phrase.lower()
        except ValueError:
            reason, message = "Unknown", "an error occurred"
    parts = [part for part in path.split("/") if part]
    details: Optional[Dict[str, Any]] = None
    if code == 409 and len(parts) >= 2:  # a conflict names the object, as the real one does
        details = {"name": parts[-1], "kind": parts[-2]}
    elif code == 429:
        details = {"retryAfterSeconds": rule.retry_after if rule.retry_after is not None else DEFAULT_RETRY_AFTER}
    what = '%s "%s"' % (parts[-2], parts[-1]) if len(parts) >= 2 else path
    text = rule.message or message.format(what=what)
    return ApiError(code, reason, text, details)


@dataclass(frozen=True)
class Fault:
    """What to do with one request: wait ``delay``, then answer ``error``, or drop the connection."""

    rule: FaultRule
    delay: float
    error: Optional[ApiError]
    drop: bool
    processed: bool
    retry_after: Optional[int]

    def describe(self, method: str, path: str, count: int) -> str:
        return "fault: %s %s -> %s (match %d of rule %s)" % (method, path, self.summary(), count, self.rule.describe())

    def summary(self) -> str:
        if self.error is not None:
            return "%d %s" % (self.error.code, self.error.reason)
        if self.drop:
            return "connection dropped" + (" after carrying it out" if self.processed else "")
        return "delayed %gs" % self.delay


class FaultInjector:
    """The rules of one faults.json, read again when the file changes; thread-safe."""

    def __init__(self, path: str, log: Optional[Callable[[str], None]] = None) -> None:
        self.path = path
        self.log = log or (lambda line: None)
        self._lock = threading.Lock()
        self._seen: Optional[Tuple[int, int, int]] = None
        self._rules: List[FaultRule] = []
        self._counts: List[int] = []
        self._killed: Optional[FaultRule] = None

    def _identity(self) -> Optional[Tuple[int, int, int]]:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _reload(self) -> None:
        identity = self._identity()
        if identity == self._seen:
            return
        self._seen = identity
        try:
            self._rules = read_rules(self.path) if identity is not None else []
        except SandboxError as error:
            self._rules = []
            self.log("faults: %s; no faults injected until it is fixed" % error)
        self._counts = [0] * len(self._rules)
        self._killed = None
        if self._rules:
            described = "; ".join(rule.describe() for rule in self._rules)
            self.log("faults: %d rule(s) from %s: %s" % (len(self._rules), self.path, described))

    def fault_for(self, method: str, path: str) -> Optional[Fault]:
        """The fault to inject into this request, or None; counts the match of every rule."""
        with self._lock:
            self._reload()
            if self._killed is not None:
                killed = Fault(self._killed, 0.0, None, True, False, None)
                self.log("fault: %s %s -> connection dropped (the server was killed by rule %s)"
                         % (method, path, self._killed.describe()))
                return killed
            chosen: Optional[Tuple[FaultRule, int]] = None
            for index, rule in enumerate(self._rules):
                if rule.matches(method, path):
                    self._counts[index] += 1
                    if chosen is None and rule.acts_on(self._counts[index]):
                        chosen = (rule, self._counts[index])
            if chosen is None:
                return None
            rule, count = chosen
            if rule.kill:
                self._killed = rule
            error = status_error(rule, path) if rule.status is not None else None
            retry_after = rule.retry_after
            if error is not None and error.code == 429 and retry_after is None:
                retry_after = DEFAULT_RETRY_AFTER
            fault = Fault(rule, rule.delay, error, rule.drop or rule.kill, rule.processed, retry_after)
        self.log(fault.describe(method, path, count))
        return fault
