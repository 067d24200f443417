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
import mmap
import sys
import threading
import time
from typing import IO, Any, Callable, Dict, List, Optional, Sequence

from okera_auth.module_utils.keys import describe_key

LOG_FORMATS = ("text", "json")

# Seconds; a token request costs one signature (about 0.3 ms for RSA-2048), more under load.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Buffered log lines are written at most this long after the event, in writes of at most
# LOG_CHUNK_BYTES cut at line ends: one write() of up to PIPE_BUF bytes is never interleaved
# with another process's on a pipe, so the lines of several worker processes stay whole.
LOG_FLUSH_SECONDS = 0.02
LOG_CHUNK_BYTES = 4096


def go_log_time(seconds: Optional[float] = None) -> str:
    """The prefix of Go's standard logger (log.LstdFlags): local date and time to the second."""
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(seconds))


class EventLog:
    """One line per event on a stream (stderr by default, as Go's log package writes):
    Go's standard log line, or a JSON object per line.

    ``buffer_with(schedule)`` turns on buffering for the lines of deleted files (they come in
    batches, as files fall due together): they are kept and written together at most
    LOG_FLUSH_SECONDS later (``schedule(delay, callback)`` is the event loop's call_later);
    every other line, and the buffer before it, is written at once. ``Generated token`` is
    never held back: its line is written before the client gets the path, as Okera's is.
    """

    BUFFERED_EVENTS = frozenset(("deleted",))

    def __init__(self, log_format: str = "text", stream: Optional[IO[str]] = None) -> None:
        self.log_format = log_format
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._second = -1
        self._prefix = ""
        self._pending: List[str] = []
        self._schedule: Optional[Callable[[float, Callable[[], None]], Any]] = None
        self._flush_armed = False

    def buffer_with(self, schedule: Optional[Callable[[float, Callable[[], None]], Any]]) -> None:
        """Buffer busy lines, flushed by ``schedule``; None writes every line at once again."""
        self.flush()
        self._schedule = schedule

    def _time_prefix(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # one strftime a second, not one a line
            self._second = second
            self._prefix = go_log_time(now)
        return self._prefix

    def event(self, event: str, message: str, level: str = "info", **fields: Any) -> None:
        now = time.time()
        if self.log_format == "json":
            record = {"time": round(now, 3), "level": level, "event": event,
                      "message": message}
            record.update(fields)
            line = json.dumps(record, separators=(",", ":"))
        elif level == "info":
            line = "%s %s" % (self._time_prefix(now), message)
        else:
            line = "%s %s: %s" % (self._time_prefix(now), level, message)
        with self._lock:
            self._pending.append(line + "\n")
            if self._schedule is not None and event in self.BUFFERED_EVENTS:
                if not self._flush_armed:
                    self._flush_armed = True
                    self._schedule(LOG_FLUSH_SECONDS, self.flush)
                return
            self._write_pending()

    def flush(self) -> None:
        with self._lock:
            self._write_pending()

    def _write_pending(self) -> None:
        self._flush_armed = False
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        chunk: List[str] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > LOG_CHUNK_BYTES:
                self.stream.write("".join(chunk))
                self.stream.flush()
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        self.stream.write("".join(chunk))
        self.stream.flush()

    def warning(self, event: str, message: str, **fields: Any) -> None:
        self.event(event, message, level="warning", **fields)

    def error(self, event: str, message: str, **fields: Any) -> None:
        self.event(event, message, level="error", **fields)


# Error kinds counted by okera_authserver_errors_total{kind=...}; each has a place in the
# shared table of counters (a kind not listed here is counted by its process only).
ERROR_KINDS = ("bad_request", "bad_user", "directory_changed", "header_timeout",
               "header_too_large", "internal", "issue_failed", "method_not_allowed", "not_found",
               "overloaded")
# One row of int64 counters per worker process; the last row is the server's own (key reloads,
# counted once per reload by whoever leads: the supervisor, or the only process).
_WORKER_FIELDS = (("tokens_issued", "tokens_in_progress", "refused_callers",
                   "connections_evicted", "accept_failures", "open_connections",
                   "pending_deletions", "latency_count", "latency_sum_ns")
                  + tuple("latency_bucket_%d" % index for index in range(len(LATENCY_BUCKETS)))
                  + tuple("error_" + kind for kind in ERROR_KINDS))
_SERVER_FIELDS = ("key_reloads", "key_reload_failures", "key_loaded_at_us")
_ROW = max(len(_WORKER_FIELDS), len(_SERVER_FIELDS))
_WORKER = {name: index for index, name in enumerate(_WORKER_FIELDS)}
_SERVER = {name: index for index, name in enumerate(_SERVER_FIELDS)}


class MetricsTable:
    """The counters of every worker process in one block of memory shared across fork():
    each process adds to its own row only (no locks), /metrics adds the rows up."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        size = (workers + 1) * _ROW * 8
        # An anonymous MAP_SHARED mapping: the children of fork() see the same pages.
        self._memory = mmap.mmap(-1, size)
        self._values = memoryview(self._memory).cast("q")

    def row(self, index: int) -> memoryview:
        return self._values[index * _ROW:(index + 1) * _ROW]

    def server_row(self) -> memoryview:
        return self.row(self.workers)

    def total(self, field: str) -> int:
        index = _WORKER[field]
        values = self._values
        return sum(values[row * _ROW + index] for row in range(self.workers))

    def per_worker(self, field: str) -> List[int]:
        index = _WORKER[field]
        return [self._values[row * _ROW + index] for row in range(self.workers)]


def _worker_field(name: str) -> property:
    index = _WORKER[name]

    def get(self: "Metrics") -> int:
        return self._row[index]

    def put(self: "Metrics", value: int) -> None:
        self._row[index] = value

    return property(get, put)


def _server_field(name: str) -> property:
    index = _SERVER[name]

    def get(self: "Metrics") -> int:
        return self._server[index]

    def put(self: "Metrics", value: int) -> None:
        self._server[index] = value

    return property(get, put)


class Histogram:
    """A Prometheus histogram without labels, kept in a row of the shared table."""

    def __init__(self, buckets: Sequence[float], row: memoryview) -> None:
        self.buckets = tuple(buckets)
        self._row = row
        self._first = _WORKER["latency_bucket_0"]
        self._count = _WORKER["latency_count"]
        self._sum = _WORKER["latency_sum_ns"]

    def observe(self, value: float) -> None:
        row = self._row
        row[self._count] += 1
        row[self._sum] += int(value * 1e9)
        index = self._first
        for bound in self.buckets:
            if value <= bound:
                row[index] += 1
                break
            index += 1

    @property
    def total(self) -> int:
        return self._row[self._count]

    @property
    def sum(self) -> float:
        return self._row[self._sum] / 1e9


class Metrics:
    """Counters of one process (updated from its event loop thread only), in its row of a
    MetricsTable; ``render`` adds up the rows of every worker process."""

    tokens_issued = _worker_field("tokens_issued")
    tokens_in_progress = _worker_field("tokens_in_progress")
    refused_callers = _worker_field("refused_callers")
    connections_evicted = _worker_field("connections_evicted")
    accept_failures = _worker_field("accept_failures")
    key_reloads = _server_field("key_reloads")
    key_reload_failures = _server_field("key_reload_failures")

    def __init__(self, table: Optional[MetricsTable] = None, worker: int = 0) -> None:
        self.table = table or MetricsTable(1)
        self.worker = worker
        self._row = self.table.row(worker)
        self._server = self.table.server_row()
        self.started_at = time.time()
        self.errors: Dict[str, int] = {}  # of this process, by kind
        self.latency = Histogram(LATENCY_BUCKETS, self._row)
        self.key: Dict[str, str] = {}  # kid, algorithm, key_type, key_size of the signing key

    def restart_row(self) -> None:
        """A worker taking over the row of one that died: counters go on, gauges start at 0."""
        for name in ("tokens_in_progress", "open_connections", "pending_deletions"):
            self._row[_WORKER[name]] = 0

    @property
    def key_loaded_at(self) -> float:
        return self._server[_SERVER["key_loaded_at_us"]] / 1e6

    def key_loaded(self, identity: Dict[str, str], when: Optional[float] = None,
                   shared: bool = True) -> None:
        """Record the signing key now in use (at start and after each successful reload);
        ``shared`` False records it for this process only (a worker of a supervisor, which
        keeps the server's time of loading)."""
        self.key = dict(identity)
        if shared:
            self._server[_SERVER["key_loaded_at_us"]] = int(
                (time.time() if when is None else when) * 1e6)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        index = _WORKER.get("error_" + kind)
        if index is not None:
            self._row[index] += 1

    def publish(self, pending_deletions: int, open_connections: int) -> None:
        """This process's gauges, for the other processes' /metrics."""
        self._row[_WORKER["pending_deletions"]] = pending_deletions
        self._row[_WORKER["open_connections"]] = open_connections

    def pending_deletions_total(self) -> int:
        return self.table.total("pending_deletions")

    def render(self, pending_deletions: int, open_connections: int, key_id: str) -> str:
        """The Prometheus text exposition (format 0.0.4), the sum of every worker process."""
        self.publish(pending_deletions, open_connections)
        table = self.table
        total = table.total
        errors = {kind: count for kind, count in self.errors.items()
                  if "error_" + kind not in _WORKER}
        errors.update((kind, total("error_" + kind)) for kind in ERROR_KINDS)
        lines = [
            "# HELP okera_authserver_tokens_issued_total Tokens minted and written to a file.",
            "# TYPE okera_authserver_tokens_issued_total counter",
            "okera_authserver_tokens_issued_total %d" % total("tokens_issued"),
            "# HELP okera_authserver_tokens_in_progress Tokens being signed and written now.",
            "# TYPE okera_authserver_tokens_in_progress gauge",
            "okera_authserver_tokens_in_progress %d" % total("tokens_in_progress"),
            "# HELP okera_authserver_errors_total Requests answered with an error, by kind.",
            "# TYPE okera_authserver_errors_total counter",
        ]
        lines.extend('okera_authserver_errors_total{kind="%s"} %d' % (kind, count)
                     for kind, count in sorted(errors.items()) if count)
        lines.extend([
            "# HELP okera_authserver_request_duration_seconds Time from a complete request "
            "head to the answer.",
            "# TYPE okera_authserver_request_duration_seconds histogram",
        ])
        name = "okera_authserver_request_duration_seconds"
        cumulative = 0
        for index, bound in enumerate(LATENCY_BUCKETS):
            cumulative += total("latency_bucket_%d" % index)
            lines.append('%s_bucket{le="%s"} %d' % (name, repr(bound), cumulative))
        lines.append('%s_bucket{le="+Inf"} %d' % (name, total("latency_count")))
        lines.append("%s_sum %.6f" % (name, total("latency_sum_ns") / 1e9))
        lines.append("%s_count %d" % (name, total("latency_count")))
        lines.extend([
            "# HELP okera_authserver_files_pending_deletion Token files waiting for deletion.",
            "# TYPE okera_authserver_files_pending_deletion gauge",
            "okera_authserver_files_pending_deletion %d" % total("pending_deletions"),
            "# HELP okera_authserver_open_connections Client connections open now.",
            "# TYPE okera_authserver_open_connections gauge",
            "okera_authserver_open_connections %d" % total("open_connections"),
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
            "okera_authserver_refused_callers_total %d" % total("refused_callers"),
            "# HELP okera_authserver_connections_evicted_total Idle connections closed to make "
            "room for a new one at --max-connections or when out of file descriptors.",
            "# TYPE okera_authserver_connections_evicted_total counter",
            "okera_authserver_connections_evicted_total %d" % total("connections_evicted"),
            "# HELP okera_authserver_accept_failures_total Connections the kernel could not hand "
            "over (out of file descriptors or memory); accepting resumes after a pause.",
            "# TYPE okera_authserver_accept_failures_total counter",
            "okera_authserver_accept_failures_total %d" % total("accept_failures"),
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
            "# HELP okera_authserver_processes Worker processes serving requests "
            "(--processes).",
            "# TYPE okera_authserver_processes gauge",
            "okera_authserver_processes %d" % table.workers,
        ])
        if table.workers > 1:
            lines.extend([
                "# HELP okera_authserver_process_tokens_issued_total Tokens minted by each "
                "worker process (their sum is okera_authserver_tokens_issued_total).",
                "# TYPE okera_authserver_process_tokens_issued_total counter",
            ])
            lines.extend('okera_authserver_process_tokens_issued_total{process="%d"} %d'
                         % (index, count)
                         for index, count in enumerate(table.per_worker("tokens_issued")))
        return "\n".join(lines) + "\n"


def key_identity(signer: Any) -> Dict[str, str]:
    """The labels of okera_authserver_key_info for a tokens.Signer: never the key, only what names it."""
    key_type = describe_key(signer.private_key).split()[0]
    size = getattr(signer.private_key, "key_size", None) or {"Ed25519": 256, "Ed448": 456}.get(key_type, 0)
    return {"kid": signer.kid or "", "algorithm": signer.algorithm, "key_type": key_type, "key_size": str(size)}


def _label_value(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
