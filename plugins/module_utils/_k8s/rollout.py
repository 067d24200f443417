# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling restarts of workloads and replacement of pods, with waiting until they are ready.

A restart is what `kubectl rollout restart` does: a new `kubectl.kubernetes.io/restartedAt`
annotation on the pod template, which makes the controller roll out new pods. Readiness is judged
from the controller's status the way `kubectl rollout status` does, stricter than
kubernetes.core's wait (which ignores updatedReplicas, so it can report a restart done before
it started).
"""
from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .._polling import pauses
from ..errors import shown
from .auth import ClusterError
from .client import api_path, request
from .names import WORKLOAD_KINDS, WORKLOAD_PLURALS

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPS_GROUP = "apps/v1"


@dataclass(frozen=True)
class Workload:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return "%s %s/%s" % (self.kind, self.namespace, self.name)

    def as_dict(self) -> Dict[str, str]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


def find_workloads(api_client: Any, namespace: str, kinds: Sequence[str] = WORKLOAD_KINDS,
                   names: Optional[Sequence[str]] = None, label_selector: Optional[str] = None) -> List[Workload]:
    """Workloads of `kinds` in the namespace, filtered by label selector and names.

    A name that matches no workload of any of the kinds is an error, so a typo cannot pass as
    "nothing to restart".
    """
    found: List[Workload] = []
    for kind in kinds:
        if kind not in WORKLOAD_PLURALS:
            raise ClusterError("unknown workload kind %s: use %s" % (shown(kind), ", ".join(WORKLOAD_KINDS)))
        listing = request(api_client, "list %ss in namespace %s" % (kind, namespace), "GET",
                          api_path(namespace, WORKLOAD_PLURALS[kind], group=APPS_GROUP), query={"labelSelector": label_selector})
        for item in listing.get("items") or []:
            name = item["metadata"]["name"]
            if not names or name in names:
                found.append(Workload(kind, namespace, name))
    missing = sorted(set(names or ()) - {workload.name for workload in found})
    if missing:
        raise ClusterError("no %s named %s in namespace %s%s; check names, kinds and namespace" % (
            "/".join(kinds), ", ".join(missing), namespace,
            " matching %s" % label_selector if label_selector else ""))
    return sorted(found, key=lambda workload: (workload.kind, workload.name))


def restart_patch(when: datetime.datetime, annotations: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The patch `kubectl rollout restart` sends, with further pod-template ``annotations`` (e.g. a key's hash)."""
    stamp = when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": dict(annotations or {}, **{RESTARTED_AT: stamp})}}}}


def restart_workloads(api_client: Any, workloads: Iterable[Workload], check_mode: bool = False,
                      when: Optional[datetime.datetime] = None,
                      annotations: Optional[Dict[str, str]] = None) -> List[Workload]:
    """Patch the restart annotation (and ``annotations``) of each workload's pod template (nothing in check mode); returns them."""
    patch = restart_patch(when or datetime.datetime.now(datetime.timezone.utc), annotations)
    restarted = []
    for workload in workloads:
        if not check_mode:
            request(api_client, "restart %s" % workload, "PATCH", _workload_path(workload), patch, STRATEGIC_MERGE_PATCH)
        restarted.append(workload)
    return restarted


def _count(status: Dict[str, Any], field: str) -> int:
    return int(status.get(field) or 0)


def rollout_state(kind: str, obj: Dict[str, Any]) -> Tuple[bool, str]:
    """(done, summary) of a workload object as the API returns it (camelCase dict)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    observed = status.get("observedGeneration") or 0
    current = observed >= ((obj.get("metadata") or {}).get("generation") or 0)
    if kind == "DaemonSet":
        wanted = _count(status, "desiredNumberScheduled")
        counts = {"updated": _count(status, "updatedNumberScheduled"), "ready": _count(status, "numberReady"),
                  "available": _count(status, "numberAvailable")}
        unavailable = _count(status, "numberUnavailable")
        leftovers = 0
        revision_done = True
    else:
        wanted = 1 if spec.get("replicas") is None else int(spec["replicas"])
        counts = {"updated": _count(status, "updatedReplicas"), "ready": _count(status, "readyReplicas")}
        if kind == "Deployment":
            counts["available"] = _count(status, "availableReplicas")
        unavailable = _count(status, "unavailableReplicas")
        leftovers = max(0, _count(status, "replicas") - wanted)
        revision_done = status.get("currentRevision") == status.get("updateRevision")
    done = (current and revision_done and unavailable == 0 and leftovers == 0
            and all(value == wanted for value in counts.values()))
    summary = ", ".join("%d/%d %s" % (value, wanted, label) for label, value in counts.items())
    if not current:
        summary += ", new generation not yet observed"
    if leftovers:
        summary += ", %d old pod(s) terminating" % leftovers
    return done, summary


def _workload_path(workload: Workload) -> str:
    return api_path(workload.namespace, WORKLOAD_PLURALS[workload.kind], workload.name, group=APPS_GROUP)


def _read_workload(api_client: Any, workload: Workload) -> Dict[str, Any]:
    return request(api_client, "read %s" % workload, "GET", _workload_path(workload))


def _poll(check: Callable[[], Tuple[bool, str]], what: str, timeout: float, sleep: float,
          clock: Callable[[], float], sleeper: Callable[[float], None]) -> str:
    deadline = clock() + timeout
    pause = pauses(sleep, deadline, clock)
    while True:
        done, summary = check()
        if done:
            return summary
        if clock() >= deadline:
            raise ClusterError("%s not ready after %g s: %s; raise wait_timeout, or look at the pods' "
                               "events and logs" % (what, timeout, summary))
        sleeper(next(pause))


def wait_for_rollouts(api_client: Any, workloads: Sequence[Workload], timeout: float, sleep: float,
                      clock: Callable[[], float] = time.monotonic,
                      sleeper: Callable[[float], None] = time.sleep) -> Dict[str, str]:
    """Wait until every workload's rollout is complete; summary per workload, or ClusterError."""
    deadline = clock() + timeout
    summaries = {}
    for workload in workloads:
        summaries[str(workload)] = _poll(
            lambda workload=workload: rollout_state(workload.kind, _read_workload(api_client, workload)),
            str(workload), max(0.0, deadline - clock()), sleep, clock, sleeper)
    return summaries


def pod_is_ready(pod: Dict[str, Any]) -> bool:
    """Running, not being deleted, and condition Ready is True."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return any(condition.get("type") == "Ready" and condition.get("status") == "True"
               for condition in status.get("conditions") or [])


def list_pods(api_client: Any, namespace: str, label_selector: Optional[str] = None) -> List[Dict[str, Any]]:
    listing = request(api_client, "list pods in namespace %s" % namespace, "GET", api_path(namespace, "pods"),
                      query={"labelSelector": label_selector})
    return listing.get("items") or []


def find_pods(api_client: Any, namespace: str, names: Optional[Sequence[str]] = None,
              label_selector: Optional[str] = None) -> List[Dict[str, Any]]:
    """Pods matching the selector (all in the namespace without one), filtered by names."""
    pods = [pod for pod in list_pods(api_client, namespace, label_selector)
            if not names or pod["metadata"]["name"] in names]
    missing = sorted(set(names or ()) - {pod["metadata"]["name"] for pod in pods})
    if missing:
        raise ClusterError("no pod named %s in namespace %s; check names and namespace" % (", ".join(missing), namespace))
    return pods


def recreator(pod: Dict[str, Any]) -> Optional[str]:
    """What recreates the pod when it is deleted ("ReplicaSet cdas-rest-server-7d9f"), or None.

    That is its controller (the ownerReference marked controller: ReplicaSet, StatefulSet,
    DaemonSet, Job, or an operator's resource); a pod without one is gone for good once deleted.
    """
    for reference in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if reference.get("controller"):
            return "%s %s" % (reference.get("kind", "?"), reference.get("name", "?"))
    return None


def pods_to_replace(pods: Sequence[Dict[str, Any]], selected: bool) -> Tuple[List[Dict[str, Any]], Dict[str, str]]:
    """(the pods to delete and wait for, {name: why} of those left alone).

    Left alone: pods that have finished (Succeeded/Failed: they read nothing any more), and
    pods that nothing recreates, unless ``selected`` (they were named, or matched a label
    selector: whoever chose them says something brings them back).
    """
    replace, skipped = [], {}
    for pod in pods:
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            skipped[name] = "it has finished (%s)" % phase
        elif recreator(pod) is None and not selected:
            skipped[name] = "no controller recreates it (it would be gone for good)"
        else:
            replace.append(pod)
    return replace, skipped


def delete_pods(api_client: Any, pods: Sequence[Dict[str, Any]], check_mode: bool = False) -> List[str]:
    """Delete the pods (nothing in check mode); returns their names. A pod already gone is fine."""
    names = []
    for pod in pods:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        if not check_mode:
            try:
                request(api_client, "delete pod %s/%s" % (namespace, name), "DELETE", api_path(namespace, "pods", name))
            except ClusterError as error:
                if error.status != 404:
                    raise
        names.append(name)
    return names


def replacement_state(pods: Sequence[Dict[str, Any]], old_uids: Iterable[str], expected: int,
                      known_uids: Optional[Iterable[str]] = None) -> Tuple[bool, str]:
    """(done, summary): the old pods are gone and `expected` new ones are ready.

    New pods are those not among `known_uids` (every pod there was before the deletion; the
    deleted ones when not given), so that a pod left alone never counts as a replacement.
    """
    old = set(old_uids)
    known = old | set(known_uids or ())
    remaining = [pod for pod in pods if pod["metadata"].get("uid") in old]
    ready = [pod for pod in pods if pod["metadata"].get("uid") not in known and pod_is_ready(pod)]
    summary = "%d/%d replacement pod(s) ready" % (len(ready), expected)
    if remaining:
        summary += ", %d old pod(s) still present" % len(remaining)
    return not remaining and len(ready) >= expected, summary


def wait_for_replacements(api_client: Any, namespace: str, label_selector: Optional[str],
                          old_uids: Sequence[str], expected: int, timeout: float, sleep: float,
                          clock: Callable[[], float] = time.monotonic,
                          sleeper: Callable[[float], None] = time.sleep,
                          known_uids: Optional[Sequence[str]] = None) -> str:
    """Wait until the deleted pods are replaced by as many ready ones (their controllers' job)."""
    what = "pods in namespace %s%s" % (namespace, " matching %s" % label_selector if label_selector else "")
    return _poll(lambda: replacement_state(list_pods(api_client, namespace, label_selector), old_uids, expected,
                                           known_uids),
                 what, timeout, sleep, clock, sleeper)
