# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the auth server tells the outside: one log line per event, and Prometheus metrics.

Log lines carry paths, user names, key ids and reasons, never a token or a key.
Text lines are written as Okera's authserver (a Go program using the standard ``log``
package) writes them: on stderr, the local date and time as ``YYYY/MM/DD HH:MM:SS``, one
space, the message, with Okera's wording (``Listening on - writing to '<dir>'``,
``Generated token: <path>``, ``Deleted token: <path>``), so its log watchers keep working.
JSON lines (``--log-format json``) carry the same message with the event's fields.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any, Dict, Optional, Sequence

from okera_auth.module_utils.keys import describe_key

LOG_FORMATS = ("text", "json")

# Seconds; a token request costs one signature (about 1 ms for RSA-2048), more under load.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def go_log_time(seconds: Optional[float] = None) -> str:
    """The prefix of Go's standard logger (log.LstdFlags): local date and time to the second."""
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(seconds))


class EventLog:
    """One line per event on a stream (stderr by default, as Go's log package writes):
    Go's standard log line, or a JSON object per line."""

    def __init__(self, log_format: str = "text", stream: Optional[IO[str]] = None) -> None:
        self.log_format = log_format
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()

    def event(self, event: str, message: str, level: str = "info", **fields: Any) -> None:
        now = time.time()
        if self.log_format == "json":
            record = {"time": round(now, 3), "level": level, "event": event,
                      "message": message}
            record.update(fields)
            line = json.dumps(record, separators=(",", ":"))
        elif level == "info":
            line = "%s %s" % (go_log_time(now), message)
        else:
            line = "%s %s: %s" % (go_log_time(now), level, message)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def warning(self, event: str, message: str, **fields: Any) -> None:
        self.event(event, message, level="warning", **fields)

    def error(self, event: str, message: str, **fields: Any) -> None:
        self.event(event, message, level="error", **fields)


class Histogram:
    """A Prometheus histogram without labels."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1
                break

    def render(self, name: str) -> list:
        lines = []
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts):
            cumulative += count
            lines.append('%s_bucket{le="%s"} %d' % (name, repr(bound), cumulative))
        lines.append('%s_bucket{le="+Inf"} %d' % (name, self.total))
        lines.append("%s_sum %.6f" % (name, self.sum))
        lines.append("%s_count %d" % (name, self.total))
        return lines


class Metrics:
    """Counters of the server, updated from the event loop thread only."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.tokens_issued = 0
        self.tokens_in_progress = 0
        self.errors: Dict[str, int] = {}
        self.key_reloads = 0
        self.key_reload_failures = 0
        self.refused_callers = 0
        self.connections_evicted = 0
        self.accept_failures = 0
        self.latency = Histogram(LATENCY_BUCKETS)
        self.key: Dict[str, str] = {}  # kid, algorithm, key_type, key_size of the signing key
        self.key_loaded_at = 0.0

    def key_loaded(self, identity: Dict[str, str], when: Optional[float] = None) -> None:
        """Record the signing key now in use (at start and after each successful reload)."""
        self.key = dict(identity)
        self.key_loaded_at = time.time() if when is None else when

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def render(self, pending_deletions: int, open_connections: int, key_id: str) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        lines = [
            "# HELP okera_authserver_tokens_issued_total Tokens minted and written to a file.",
            "# TYPE okera_authserver_tokens_issued_total counter",
            "okera_authserver_tokens_issued_total %d" % self.tokens_issued,
            "# HELP okera_authserver_tokens_in_progress Tokens being signed and written now.",
            "# TYPE okera_authserver_tokens_in_progress gauge",
            "okera_authserver_tokens_in_progress %d" % self.tokens_in_progress,
            "# HELP okera_authserver_errors_total Requests answered with an error, by kind.",
            "# TYPE okera_authserver_errors_total counter",
        ]
        lines.extend('okera_authserver_errors_total{kind="%s"} %d' % (kind, count)
                     for kind, count in sorted(self.errors.items()))
        lines.extend([
            "# HELP okera_authserver_request_duration_seconds Time from a complete request "
            "head to the answer.",
            "# TYPE okera_authserver_request_duration_seconds histogram",
        ])
        lines.extend(self.latency.render("okera_authserver_request_duration_seconds"))
        lines.extend([
            "# HELP okera_authserver_files_pending_deletion Token files waiting for deletion.",
            "# TYPE okera_authserver_files_pending_deletion gauge",
            "okera_authserver_files_pending_deletion %d" % pending_deletions,
            "# HELP okera_authserver_open_connections Client connections open now.",
            "# TYPE okera_authserver_open_connections gauge",
            "okera_authserver_open_connections %d" % open_connections,
            "# HELP okera_authserver_key_reloads_total Successful key reloads (SIGHUP).",
            "# TYPE okera_authserver_key_reloads_total counter",
            "okera_authserver_key_reloads_total %d" % self.key_reloads,
            "# HELP okera_authserver_key_reload_failures_total Failed key reloads; the "
            "previous key stays in use.",
            "# TYPE okera_authserver_key_reload_failures_total counter",
            "okera_authserver_key_reload_failures_total %d" % self.key_reload_failures,
            "# HELP okera_authserver_refused_callers_total Unix-socket callers refused by "
            "the uid/gid allow-list.",
            "# TYPE okera_authserver_refused_callers_total counter",
            "okera_authserver_refused_callers_total %d" % self.refused_callers,
            "# HELP okera_authserver_connections_evicted_total Idle connections closed to make "
            "room for a new one at --max-connections or when out of file descriptors.",
            "# TYPE okera_authserver_connections_evicted_total counter",
            "okera_authserver_connections_evicted_total %d" % self.connections_evicted,
            "# HELP okera_authserver_accept_failures_total Connections the kernel could not hand "
            "over (out of file descriptors or memory); accepting resumes after a pause.",
            "# TYPE okera_authserver_accept_failures_total counter",
            "okera_authserver_accept_failures_total %d" % self.accept_failures,
            "# HELP okera_authserver_key_info The key that signs new tokens: its kid, algorithm, "
            "type and size.",
            "# TYPE okera_authserver_key_info gauge",
            "okera_authserver_key_info{%s} 1" % ",".join(
                '%s="%s"' % (name, _label_value(value))
                for name, value in sorted(dict(self.key, kid=key_id).items())),
            "# HELP okera_authserver_key_loaded_timestamp_seconds When the signing key in use "
            "was loaded (at start or by a reload), as a Unix timestamp.",
            "# TYPE okera_authserver_key_loaded_timestamp_seconds gauge",
            "okera_authserver_key_loaded_timestamp_seconds %.3f" % self.key_loaded_at,
            "# HELP okera_authserver_start_time_seconds Start time of the server.",
            "# TYPE okera_authserver_start_time_seconds gauge",
            "okera_authserver_start_time_seconds %.3f" % self.started_at,
        ])
        return "\n".join(lines) + "\n"


def key_identity(signer: Any) -> Dict[str, str]:
    """The labels of okera_authserver_key_info for a tokens.Signer: never the key, only what names it."""
    key_type = describe_key(signer.private_key).split()[0]
    size = getattr(signer.private_key, "key_size", None) or {"Ed25519": 256, "Ed448": 456}.get(key_type, 0)
    return {"kid": signer.kid or "", "algorithm": signer.algorithm, "key_type": key_type, "key_size": str(size)}


def _label_value(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
