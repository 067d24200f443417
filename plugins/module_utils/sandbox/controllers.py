# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Workload controllers: Deployments, StatefulSets and DaemonSets create, roll and count pods.

They follow the real controllers' rules where a restart can tell the difference: a
Deployment surges and keeps old pods until new ones are ready (maxSurge/maxUnavailable),
a StatefulSet replaces pods one at a time from the highest ordinal and waits for each
to be ready, a DaemonSet replaces its one pod per node. ReplicaSets and
ControllerRevisions are not modelled: pods name their workload as owner directly.
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import json
import math
import time
from typing import List

from .kubelet import NODE_NAME, is_ready, is_running_and_ready
from .resources import DAEMONSETS, DEPLOYMENTS, PODS, STATEFULSETS, WORKLOADS, ResourceType
from .store import Store, random_suffix, timestamp

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_LABEL = "controller-revision-hash"


def template_hash(template: dict) -> str:
    """A short stable name for a pod template, like the controllers' pod-template-hash."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode("utf-8")).digest()
    return "".join(_HASH_ALPHABET[byte % len(_HASH_ALPHABET)] for byte in digest[:10])


def _scaled(value, replicas: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * replicas / 100.0
        return int(math.ceil(exact) if round_up else math.floor(exact))
    return int(value or 0)


def _owned_pods(store: Store, workload: dict) -> List[dict]:
    uid = workload["metadata"]["uid"]
    return [pod for pod in store.objects(PODS, workload["metadata"]["namespace"])
            if any(reference.get("uid") == uid for reference in pod["metadata"].get("ownerReferences") or [])]


def _condition(old_status: dict, kind: str, status: str, reason: str, message: str, now: float) -> dict:
    """A workload condition that keeps its timestamps while nothing about it changes."""
    previous = next((condition for condition in old_status.get("conditions") or []
                     if condition.get("type") == kind), {})
    moment = timestamp(now)
    same = previous.get("status") == status and previous.get("reason") == reason
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": previous.get("lastUpdateTime", moment) if same else moment,
            "lastTransitionTime": previous.get("lastTransitionTime", moment)
            if previous.get("status") == status else moment}


def _without_zeros(status: dict) -> dict:
    # The API server leaves zero counts out of workload status (omitempty).
    return {key: value for key, value in status.items() if value not in (0, None)}


class Controllers:
    """Reconciles every workload with its pods, then reports the workload's status."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def sync(self, now: float) -> None:
        self._collect_orphans()
        for rtype in WORKLOADS:
            for workload in self.store.objects(rtype):
                {"Deployment": self._sync_deployment, "StatefulSet": self._sync_statefulset,
                 "DaemonSet": self._sync_daemonset}[rtype.kind](rtype, workload, now)

    def _collect_orphans(self) -> None:
        """Delete pods whose controlling owner is gone (background cascading deletion)."""
        live = {workload["metadata"]["uid"] for rtype in WORKLOADS for workload in self.store.objects(rtype)}
        for pod in self.store.objects(PODS):
            owners = [reference for reference in pod["metadata"].get("ownerReferences") or []
                      if reference.get("controller")]
            if owners and not any(reference.get("uid") in live for reference in owners):
                self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _create_pod(self, rtype: ResourceType, workload: dict, name: str, labels: dict,
                    **spec_fields: str) -> None:
        template = copy.deepcopy(workload["spec"]["template"])
        template_meta = template.get("metadata") or {}
        meta = {"name": name, "namespace": workload["metadata"]["namespace"],
                "labels": dict(template_meta.get("labels") or {}, **labels),
                "ownerReferences": [{"apiVersion": rtype.api_version, "kind": rtype.kind,
                                     "name": workload["metadata"]["name"],
                                     "uid": workload["metadata"]["uid"],
                                     "controller": True, "blockOwnerDeletion": True}]}
        if template_meta.get("annotations"):
            meta["annotations"] = dict(template_meta["annotations"])
        spec = dict(template["spec"], nodeName=NODE_NAME, **spec_fields)
        self.store.create(PODS, meta["namespace"], {"metadata": meta, "spec": spec})

    def _delete_pod(self, pod: dict) -> None:
        self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    # ---- Deployment -----------------------------------------------------------------------------

    def _sync_deployment(self, rtype: ResourceType, deployment: dict, now: float) -> None:
        spec, name = deployment["spec"], deployment["metadata"]["name"]
        replicas = spec["replicas"]
        current_hash = template_hash(spec["template"])
        pods = _owned_pods(self.store, deployment)
        new = [pod for pod in pods if pod["metadata"]["labels"].get(TEMPLATE_HASH_LABEL) == current_hash]
        old = [pod for pod in pods if pod not in new]
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            max_surge, max_unavailable = 0, replicas
        else:
            rolling = strategy.get("rollingUpdate") or {}
            max_surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
            max_unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
            if max_surge == 0 and max_unavailable == 0:
                max_unavailable = 1
        # Too many new pods (scaled down): drop the unready first.
        for pod in sorted(new, key=is_ready)[:max(len(new) - replicas, 0)]:
            self._delete_pod(pod)
            new.remove(pod)
        # Old pods go while enough pods stay available; unready ones cost nothing.
        available = sum(1 for pod in new + old if is_ready(pod))
        for pod in sorted(old, key=is_ready):
            if strategy.get("type") == "Recreate" or not is_ready(pod) \
                    or available - 1 >= replicas - max_unavailable:
                available -= 1 if is_ready(pod) else 0
                self._delete_pod(pod)
                old.remove(pod)
        if strategy.get("type") != "Recreate" or not old:
            count = len(new)
            while count < replicas and count + len(old) < replicas + max_surge:
                self._create_pod(rtype, deployment, "%s-%s-%s" % (name, current_hash, random_suffix()),
                                 {TEMPLATE_HASH_LABEL: current_hash})
                count += 1
        self._report_deployment(deployment, current_hash, max_unavailable, now)

    def _report_deployment(self, deployment: dict, current_hash: str, max_unavailable: int,
                           now: float) -> None:
        spec, old_status = deployment["spec"], deployment.get("status") or {}
        replicas = spec["replicas"]
        pods = _owned_pods(self.store, deployment)
        updated = [pod for pod in pods if pod["metadata"]["labels"].get(TEMPLATE_HASH_LABEL) == current_hash]
        available = sum(1 for pod in pods if is_ready(pod))
        replica_set = "%s-%s" % (deployment["metadata"]["name"], current_hash)
        complete = (len(updated) == replicas == len(pods)
                    and all(is_ready(pod) for pod in updated))
        conditions = [_condition(
            old_status, "Available", "True" if available >= replicas - max_unavailable else "False",
            "MinimumReplicasAvailable" if available >= replicas - max_unavailable
            else "MinimumReplicasUnavailable",
            "Deployment has minimum availability." if available >= replicas - max_unavailable
            else "Deployment does not have minimum availability.", now)]
        previous = next((condition for condition in old_status.get("conditions") or []
                         if condition.get("type") == "Progressing"), {})
        if complete:
            progressing = _condition(old_status, "Progressing", "True", "NewReplicaSetAvailable",
                                     'ReplicaSet "%s" has successfully progressed.' % replica_set, now)
        elif previous.get("reason") == "ProgressDeadlineExceeded" or (
                previous.get("reason") == "ReplicaSetUpdated"
                and now - _epoch(previous["lastUpdateTime"]) > spec.get("progressDeadlineSeconds", 600)):
            progressing = _condition(old_status, "Progressing", "False", "ProgressDeadlineExceeded",
                                     'ReplicaSet "%s" has timed out progressing.' % replica_set, now)
        else:
            progressing = _condition(old_status, "Progressing", "True", "ReplicaSetUpdated",
                                     'ReplicaSet "%s" is progressing.' % replica_set, now)
        conditions.append(progressing)
        status = _without_zeros({
            "observedGeneration": deployment["metadata"]["generation"], "replicas": len(pods),
            "updatedReplicas": len(updated), "readyReplicas": available, "availableReplicas": available,
            "unavailableReplicas": max(max(replicas, len(pods)) - available, 0)})
        status["conditions"] = conditions
        self.store.write_status(DEPLOYMENTS, deployment["metadata"]["namespace"],
                                deployment["metadata"]["name"], status)

    # ---- StatefulSet ----------------------------------------------------------------------------

    def _sync_statefulset(self, rtype: ResourceType, statefulset: dict, now: float) -> None:
        spec, name = statefulset["spec"], statefulset["metadata"]["name"]
        replicas = spec["replicas"]
        update_revision = "%s-%s" % (name, template_hash(spec["template"]))
        pods = {pod["metadata"]["name"]: pod for pod in _owned_pods(self.store, statefulset)}
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        names = ["%s-%d" % (name, ordinal) for ordinal in range(replicas)]
        for extra in sorted(set(pods) - set(names), key=_ordinal, reverse=True):
            self._delete_pod(pods.pop(extra))
            if ordered:
                break
        for pod_name in names:
            if pod_name not in pods:
                identity = {"hostname": pod_name}
                if spec.get("serviceName"):
                    identity["subdomain"] = spec["serviceName"]
                self._create_pod(rtype, statefulset, pod_name, {
                    REVISION_LABEL: update_revision, "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(_ordinal(pod_name))}, **identity)
                if ordered:
                    break
            elif ordered and not is_running_and_ready(pods[pod_name]):
                break  # OrderedReady waits for each pod before touching the next
        else:
            self._roll_statefulset(spec, names, pods, update_revision)
        self._report_statefulset(statefulset, update_revision)

    def _roll_statefulset(self, spec: dict, names: List[str], pods: dict, update_revision: str) -> None:
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        for pod_name in reversed(names[partition:]):
            pod = pods.get(pod_name)
            if pod is None:
                return
            if pod["metadata"]["labels"].get(REVISION_LABEL) != update_revision:
                self._delete_pod(pod)
                return
            if not is_running_and_ready(pod):
                return

    def _report_statefulset(self, statefulset: dict, update_revision: str) -> None:
        old_status = statefulset.get("status") or {}
        pods = _owned_pods(self.store, statefulset)
        replicas = statefulset["spec"]["replicas"]
        current_revision = old_status.get("currentRevision") or update_revision
        updated = sum(1 for pod in pods if pod["metadata"]["labels"].get(REVISION_LABEL) == update_revision)
        ready = sum(1 for pod in pods if is_running_and_ready(pod))
        if updated == replicas == len(pods) == ready:
            current_revision = update_revision
        current = sum(1 for pod in pods if pod["metadata"]["labels"].get(REVISION_LABEL) == current_revision)
        status = _without_zeros({
            "observedGeneration": statefulset["metadata"]["generation"], "readyReplicas": ready,
            "currentReplicas": current, "updatedReplicas": updated})
        status.update(replicas=len(pods), availableReplicas=ready, currentRevision=current_revision,
                      updateRevision=update_revision, collisionCount=0)
        self.store.write_status(STATEFULSETS, statefulset["metadata"]["namespace"],
                                statefulset["metadata"]["name"], status)

    # ---- DaemonSet ------------------------------------------------------------------------------

    def _sync_daemonset(self, rtype: ResourceType, daemonset: dict, now: float) -> None:
        spec, name = daemonset["spec"], daemonset["metadata"]["name"]
        revision = template_hash(spec["template"])
        pods = _owned_pods(self.store, daemonset)
        on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
        current = [pod for pod in pods if pod["metadata"]["labels"].get(REVISION_LABEL) == revision]
        for pod in pods:
            if pod not in current and not on_delete:
                self._delete_pod(pod)  # one node, maxUnavailable 1: replace in place
        if not pods or (not current and not on_delete):
            self._create_pod(rtype, daemonset, "%s-%s" % (name, random_suffix()), {
                REVISION_LABEL: revision,
                "pod-template-generation": str(daemonset["metadata"]["generation"])})
        self._report_daemonset(daemonset, revision)

    def _report_daemonset(self, daemonset: dict, revision: str) -> None:
        pods = _owned_pods(self.store, daemonset)
        ready = sum(1 for pod in pods if is_ready(pod))
        updated = sum(1 for pod in pods if pod["metadata"]["labels"].get(REVISION_LABEL) == revision)
        status = {"desiredNumberScheduled": 1, "currentNumberScheduled": min(len(pods), 1),
                  "numberMisscheduled": 0, "numberReady": ready,
                  "observedGeneration": daemonset["metadata"]["generation"]}
        status.update(_without_zeros({"numberAvailable": ready, "updatedNumberScheduled": updated,
                                      "numberUnavailable": max(1 - ready, 0)}))
        self.store.write_status(DAEMONSETS, daemonset["metadata"]["namespace"],
                                daemonset["metadata"]["name"], status)


def _ordinal(pod_name: str) -> int:
    suffix = pod_name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def _epoch(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
