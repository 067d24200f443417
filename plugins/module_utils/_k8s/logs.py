# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ready pods of a workload logged: the last line matching a pattern, and waiting for it.

A sidecar that listens on its pod's loopback only cannot be asked from outside; what it logged at
start (the key it signs with) is what can be seen, through the API server (``kubectl logs``).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Pattern, Tuple

from .._polling import pauses
from ..errors import shown
from .auth import ClusterError
from .client import api_path, request, request_text
from .names import WORKLOAD_KINDS, WORKLOAD_PLURALS
from .rollout import APPS_GROUP, Workload, list_pods, pod_is_ready


@dataclass
class PodLog:
    """One pod's log as read: its lines (oldest first), and the last one matching the pattern."""

    name: str
    ready: bool
    lines: List[str] = field(default_factory=list)
    match: Optional[str] = None
    value: Optional[str] = None

    def as_dict(self, with_lines: bool = False) -> Dict[str, Any]:
        result: Dict[str, Any] = {"name": self.name, "ready": self.ready, "line_count": len(self.lines),
                                  "match": self.match, "value": self.value}
        if with_lines:
            result["lines"] = list(self.lines)
        return result


def selector_of(workload: Workload, obj: Dict[str, Any]) -> str:
    """The workload's pod selector (spec.selector) as a label selector string."""
    selector = (obj.get("spec") or {}).get("selector") or {}
    terms = ["%s=%s" % item for item in sorted((selector.get("matchLabels") or {}).items())]
    operators = {"In": "%s in (%s)", "NotIn": "%s notin (%s)"}
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        if operator in operators:
            terms.append(operators[operator] % (key, ",".join(expression.get("values") or [])))
        elif operator in ("Exists", "DoesNotExist"):
            terms.append(key if operator == "Exists" else "!" + key)
        else:
            raise ClusterError("%s has a selector operator %s this module does not know" % (workload, shown(operator)))
    if not terms:
        raise ClusterError("%s has no pod selector" % workload)
    return ",".join(terms)


def workload_selector(api_client: Any, workload: Workload) -> str:
    if workload.kind not in WORKLOAD_PLURALS:
        raise ClusterError("unknown workload kind %s: use %s" % (shown(workload.kind), ", ".join(WORKLOAD_KINDS)))
    obj = request(api_client, "read %s" % workload, "GET",
                  api_path(workload.namespace, WORKLOAD_PLURALS[workload.kind], workload.name, group=APPS_GROUP))
    return selector_of(workload, obj)


def read_log(api_client: Any, namespace: str, pod: str, container: Optional[str], tail_lines: int) -> List[str]:
    """The last ``tail_lines`` lines the pod's container logged (its current run)."""
    text = request_text(api_client, "read the log of pod %s/%s%s" % (namespace, pod, " container %s" % container if container else ""),
                        "GET", api_path(namespace, "pods", pod) + "/log",
                        query={"container": container, "tailLines": str(tail_lines)}, accept="text/plain, */*")
    return text.splitlines()


def last_match(lines: List[str], pattern: Pattern[str]) -> Optional[re.Match]:
    """The match in the newest line that matches, or None."""
    for line in reversed(lines):
        found = pattern.search(line)
        if found:
            return found
    return None


def pod_logs(api_client: Any, namespace: str, label_selector: Optional[str], container: Optional[str], tail_lines: int,
             pattern: Optional[Pattern[str]] = None, ready_only: bool = True) -> List[PodLog]:
    """The log of each (ready) pod matching the selector, with its last line matching ``pattern``."""
    found = []
    for pod in sorted(list_pods(api_client, namespace, label_selector), key=lambda pod: pod["metadata"]["name"]):
        ready = pod_is_ready(pod)
        if ready_only and not ready:
            continue
        entry = PodLog(pod["metadata"]["name"], ready, read_log(api_client, namespace, pod["metadata"]["name"], container, tail_lines))
        matched = last_match(entry.lines, pattern) if pattern else None
        if matched:
            entry.match = matched.group(0)
            entry.value = matched.group(1) if matched.re.groups else matched.group(0)
        found.append(entry)
    return found


def expectation_state(logs: List[PodLog], expect: str) -> Tuple[bool, List[str], str]:
    """(done, wrong, summary): done when there are pods and each one's last match is ``expect``;
    ``wrong`` names the pods whose last match is something else."""
    wrong = ["%s (%s)" % (entry.name, entry.value) for entry in logs if entry.value is not None and entry.value != expect]
    waiting = [entry.name + (" (empty log)" if not entry.lines else "") for entry in logs if entry.value is None]
    if not logs:
        summary = "no ready pod"
    elif waiting:
        summary = "no matching line yet from %s" % ", ".join(waiting)
    else:
        summary = "%d pod(s) match" % len(logs)
    return bool(logs) and not waiting and not wrong, wrong, summary


def wait_for_expected(read: Callable[[], List[PodLog]], expect: str, what: str, timeout: float, sleep: float,
                      clock: Callable[[], float] = time.monotonic,
                      sleeper: Callable[[float], None] = time.sleep) -> List[PodLog]:
    """Read until every pod's last match is ``expect``; ClusterError at once for a pod whose last match
    is another value, or when ``timeout`` has passed."""
    deadline = clock() + timeout
    pause = pauses(sleep, deadline, clock)
    while True:
        logs = read()
        done, wrong, summary = expectation_state(logs, expect)
        if wrong:
            raise ClusterError("%s: %s logged another value than %s: %s" % (what, ", ".join(wrong), expect, "; ".join(
                entry.match for entry in logs if entry.value is not None and entry.value != expect)))
        if done:
            return logs
        if clock() >= deadline:
            raise ClusterError("%s: %s after %g s; raise wait_timeout, or look at the pods' logs" % (what, summary, timeout))
        sleeper(next(pause))
