"""A Pushgateway stand-in on 127.0.0.1 for tests: it records every request, keeps the pushed groups as the
real one does (PUT replaces a group, POST only the families it carries), refuses bodies the official parser
cannot read (or that carry timestamps), and answers GET /api/v1/metrics in the real one's JSON shape."""
from __future__ import annotations

import base64
import http.server
import json
import threading
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Tuple
from urllib.parse import unquote

from prometheus_client.parser import text_string_to_metric_families

Group = FrozenSet[Tuple[str, str]]


@dataclass
class Recorded:
    method: str
    path: str
    body: str
    headers: Dict[str, str]


@dataclass
class PushgatewayStub:
    """Start with start(); the base URL is .url; requests are in .requests, groups in .groups."""

    fail_with: Optional[int] = None  # answer every push with this status
    require_auth: Optional[str] = None  # "user:password" a push must carry as basic auth
    requests: List[Recorded] = field(default_factory=list)
    groups: Dict[Group, Dict[str, dict]] = field(default_factory=dict)

    def start(self) -> "PushgatewayStub":
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> Recorded:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                recorded = Recorded(self.command, self.path, body, dict(self.headers.items()))
                stub.requests.append(recorded)
                return recorded

            def _authorized(self, recorded: Recorded) -> bool:
                if stub.require_auth is None:
                    return True
                expected = "Basic " + base64.b64encode(stub.require_auth.encode()).decode()
                return recorded.headers.get("Authorization") == expected

            def do_GET(self):  # noqa: N802 (http.server's name)
                recorded = self._record()
                if not self._authorized(recorded):
                    return self._answer(401, b"unauthorized")
                if self.path != "/api/v1/metrics":
                    return self._answer(404)
                data = [dict({"labels": dict(group)}, **families) for group, families in stub.groups.items()]
                self._answer(200, json.dumps({"status": "success", "data": data}).encode(), "application/json")

            def _push(self, replace: bool):
                recorded = self._record()
                if not self._authorized(recorded):
                    return self._answer(401, b"unauthorized")
                if stub.fail_with:
                    return self._answer(stub.fail_with, b"pushgateway is unhappy")
                try:
                    group = parse_group_path(self.path)
                    families = parse_body(recorded.body, dict(group))
                except ValueError as error:
                    return self._answer(400, str(error).encode())
                if replace or group not in stub.groups:
                    stub.groups[group] = {}
                stub.groups[group].update(families)
                self._answer(200)

            def do_PUT(self):  # noqa: N802
                self._push(replace=True)

            def do_POST(self):  # noqa: N802
                self._push(replace=False)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def pushes(self) -> List[Recorded]:
        return [request for request in self.requests if request.method in ("PUT", "POST")]

    def values(self, **grouping: str) -> Dict[Tuple[str, FrozenSet[Tuple[str, str]]], float]:
        """{(metric name, labels without job and instance): value} of one group."""
        families = self.groups.get(frozenset(dict(grouping).items()), {})
        return {(name, frozenset((key, value) for key, value in metric["labels"].items()
                                 if key not in ("job", "instance"))): float(metric["value"])
                for name, family in families.items() for metric in family["metrics"]}


def parse_group_path(path: str) -> Group:
    """/metrics/job/<job>{/<label>[@base64]/<value>} -> the grouping labels."""
    parts = path.split("/")
    if parts[:2] != ["", "metrics"] or len(parts) % 2:
        raise ValueError("bad path %s" % path)
    labels = {}
    for name, value in zip(parts[2::2], parts[3::2]):
        if name.endswith("@base64"):
            name = name[:-len("@base64")]
            value = "" if value == "=" else base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        else:
            value = unquote(value)
        labels[name] = value
    if "job" not in labels:
        raise ValueError("no job in %s" % path)
    return frozenset(labels.items())


def parse_body(text: str, grouping: Dict[str, str]) -> Dict[str, dict]:
    """The families of a pushed body, keyed by sample name as the Go parser keys them; ValueError if bad."""
    families: Dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.timestamp is not None:
                raise ValueError("pushed metrics must not have timestamps")
            labels = dict(sample.labels, **grouping)
            labels.setdefault("instance", "")
            entry = families.setdefault(sample.name, {"type": family.type.upper(), "help": family.documentation,
                                                      "time_stamp": "2026-01-01T00:00:00Z", "metrics": []})
            entry["metrics"].append({"labels": labels, "value": repr(sample.value)})
    return families
