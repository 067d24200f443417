# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side printing: the ``Table`` answers ``kubectl get`` asks for, with its usual columns."""

from __future__ import annotations

import calendar
import time
from typing import Callable, Dict, List, Tuple

from .resources import ResourceType

Column = Tuple[str, str, Callable[[dict, float], object]]


def age(obj: dict, now: float) -> str:
    """kubectl's short age: 45s, 3m12s, 5h, 2d3h, 12d."""
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = max(int(now - calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))), 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return "%ds" % seconds
    if minutes < 10:
        return "%dm%ds" % (minutes, seconds % 60)
    if hours < 3:
        return "%dm" % minutes
    if hours < 8:
        return "%dh%dm" % (hours, minutes % 60)
    if days < 2:
        return "%dh" % hours
    if days < 8:
        return "%dd%dh" % (days, hours % 24)
    return "%dd" % days


def _pod_status(pod: dict) -> str:
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") != "ContainerCreating":
            return waiting["reason"]
    for container in status.get("containerStatuses") or []:
        if "waiting" in (container.get("state") or {}):
            return "ContainerCreating"
    return status.get("phase", "Pending")


def _pod_ready(pod: dict) -> str:
    containers = (pod.get("status") or {}).get("containerStatuses") or []
    return "%d/%d" % (sum(1 for container in containers if container.get("ready")),
                      len(pod.get("spec", {}).get("containers") or []))


def _restarts(pod: dict) -> int:
    return sum(container.get("restartCount", 0)
               for container in (pod.get("status") or {}).get("containerStatuses") or [])


def _status_count(field: str) -> Callable[[dict, float], int]:
    return lambda obj, now: (obj.get("status") or {}).get(field, 0)


def _ready_of(ready_field: str) -> Callable[[dict, float], str]:
    return lambda obj, now: "%d/%d" % ((obj.get("status") or {}).get(ready_field, 0),
                                       obj.get("spec", {}).get("replicas", 0))


def _external_ip(service: dict) -> str:
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return spec.get("externalName", "")
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [entry.get("ip") or entry.get("hostname") or "" for entry in ingress]
    if addresses:
        return ",".join(addresses)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


def _service_ports(service: dict) -> str:
    ports = (service.get("spec") or {}).get("ports") or []
    texts = ["%s%s/%s" % (port.get("port"), ":%s" % port["nodePort"] if port.get("nodePort") else "",
                          port.get("protocol", "TCP")) for port in ports]
    return ",".join(texts) or "<none>"


_NAME: Column = ("Name", "string", lambda obj, now: obj["metadata"]["name"])
_AGE: Column = ("Age", "string", age)
COLUMNS: Dict[str, List[Column]] = {
    "pods": [_NAME, ("Ready", "string", lambda obj, now: _pod_ready(obj)),
             ("Status", "string", lambda obj, now: _pod_status(obj)),
             ("Restarts", "string", lambda obj, now: str(_restarts(obj))), _AGE],
    "deployments": [_NAME, ("Ready", "string", _ready_of("readyReplicas")),
                    ("Up-to-date", "integer", _status_count("updatedReplicas")),
                    ("Available", "integer", _status_count("availableReplicas")), _AGE],
    "replicasets": [_NAME, ("Desired", "integer", lambda obj, now: obj.get("spec", {}).get("replicas", 0)),
                    ("Current", "integer", _status_count("replicas")),
                    ("Ready", "integer", _status_count("readyReplicas")), _AGE],
    "statefulsets": [_NAME, ("Ready", "string", _ready_of("readyReplicas")), _AGE],
    "daemonsets": [_NAME, ("Desired", "integer", _status_count("desiredNumberScheduled")),
                   ("Current", "integer", _status_count("currentNumberScheduled")),
                   ("Ready", "integer", _status_count("numberReady")),
                   ("Up-to-date", "integer", _status_count("updatedNumberScheduled")),
                   ("Available", "integer", _status_count("numberAvailable")), _AGE],
    "secrets": [_NAME, ("Type", "string", lambda obj, now: obj.get("type", "Opaque")),
                ("Data", "integer", lambda obj, now: len(obj.get("data") or {})), _AGE],
    "configmaps": [_NAME, ("Data", "integer",
                           lambda obj, now: len(obj.get("data") or {}) + len(obj.get("binaryData") or {})),
                   _AGE],
    "services": [_NAME, ("Type", "string", lambda obj, now: (obj.get("spec") or {}).get("type", "")),
                 ("Cluster-IP", "string", lambda obj, now: (obj.get("spec") or {}).get("clusterIP", "<none>")),
                 ("External-IP", "string", lambda obj, now: _external_ip(obj)),
                 ("Port(s)", "string", lambda obj, now: _service_ports(obj)), _AGE],
    "namespaces": [_NAME, ("Status", "string", lambda obj, now: (obj.get("status") or {}).get("phase", "")),
                   _AGE],
    "serviceaccounts": [_NAME, _AGE],
    "cronjobs": [_NAME, ("Schedule", "string", lambda obj, now: (obj.get("spec") or {}).get("schedule", "")),
                 ("Suspend", "boolean", lambda obj, now: bool((obj.get("spec") or {}).get("suspend"))), _AGE],
    "roles": [_NAME, _AGE],
    "rolebindings": [_NAME, ("Role", "string", lambda obj, now: "%s/%s" % (
        (obj.get("roleRef") or {}).get("kind", ""), (obj.get("roleRef") or {}).get("name", ""))), _AGE],
}


def table(rtype: ResourceType, objects: List[dict], revision: int, include_object: str,
          now: float) -> dict:
    """A meta.k8s.io/v1 Table of ``objects``; rows carry metadata only unless asked for more."""
    columns = COLUMNS[rtype.plural]
    rows = []
    for obj in objects:
        if include_object == "Object":
            row_object = obj
        elif include_object == "None":
            row_object = None
        else:
            row_object = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                          "metadata": obj["metadata"]}
        row = {"cells": [cell(obj, now) for _name, _type, cell in columns]}
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(revision)},
            "columnDefinitions": [{"name": name, "type": kind, "format": "name" if name == "Name" else "",
                                   "description": name, "priority": 0} for name, kind, _cell in columns],
            "rows": rows}
