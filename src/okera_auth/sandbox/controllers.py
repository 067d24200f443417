# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Workload controllers: Deployments, StatefulSets and DaemonSets create, roll and count pods.

They follow the real controllers' rules where a restart can tell the difference: a
Deployment keeps one ReplicaSet per template (with revisions, so rollback works) and
sizes them as the rolling update does (maxSurge/maxUnavailable, unavailable old pods
first), a StatefulSet replaces pods one at a time from the highest ordinal and waits
for each to be ready, a DaemonSet replaces its one pod per node. ControllerRevisions
are not modelled: StatefulSet and DaemonSet revisions are template hashes. A Service of type
LoadBalancer gets the sandbox's load balancer address (``--load-balancer-ip``, default
127.0.0.1) as its load balancer's ingress.
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import json
import math
import time
from typing import List, Tuple

from .kubelet import NODE_NAME, is_ready, is_running_and_ready
from .resources import (
    DAEMONSETS, DEPLOYMENTS, PODS, REPLICASETS, SERVICE_RESOURCE, STATEFULSETS, WORKLOADS, ResourceType)
from .store import Store, random_suffix, timestamp

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_LABEL = "controller-revision-hash"
DEFAULT_LOAD_BALANCER_IP = "127.0.0.1"


def _without_nulls(value):
    # Go decodes null as the zero value: a null field and a missing one are the same template.
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def template_hash(template: dict) -> str:
    """A short stable name for a pod template, like the controllers' pod-template-hash."""
    canonical = json.dumps(_without_nulls(template), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return "".join(_HASH_ALPHABET[byte % len(_HASH_ALPHABET)] for byte in digest[:10])


def _scaled(value, replicas: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * replicas / 100.0
        return int(math.ceil(exact) if round_up else math.floor(exact))
    return int(value or 0)


def _owned(store: Store, rtype: ResourceType, owner: dict) -> List[dict]:
    """Objects of ``rtype`` whose controller is ``owner``."""
    uid = owner["metadata"]["uid"]
    return [obj for obj in store.objects(rtype, owner["metadata"]["namespace"])
            if any(reference.get("uid") == uid and reference.get("controller")
                   for reference in obj["metadata"].get("ownerReferences") or [])]


def _controller_reference(rtype: ResourceType, owner: dict) -> dict:
    return {"apiVersion": rtype.api_version, "kind": rtype.kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _size(replica_set: dict) -> int:
    return replica_set["spec"].get("replicas", 0)


def _available(replica_set: dict) -> int:
    return (replica_set.get("status") or {}).get("availableReplicas", 0)


def _revision(replica_set: dict) -> int:
    text = (replica_set["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0")
    return int(text) if text.isdigit() else 0


def _rolling_limits(spec: dict) -> Tuple[int, int]:
    """(maxSurge, maxUnavailable) of a Deployment, in pods."""
    replicas, strategy = spec["replicas"], spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    max_surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    max_unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    return max_surge, (1 if max_surge == 0 and max_unavailable == 0 else max_unavailable)


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

    def __init__(self, store: Store, load_balancer_ip: str = DEFAULT_LOAD_BALANCER_IP) -> None:
        self.store = store
        self.load_balancer_ip = load_balancer_ip

    def sync(self, now: float) -> None:
        self._collect_orphans()
        deployments = self.store.objects(DEPLOYMENTS)
        for deployment in deployments:
            self._sync_deployment(deployment)
        for replica_set in self.store.objects(REPLICASETS):
            self._sync_replicaset(replica_set)
        for deployment in self.store.objects(DEPLOYMENTS):
            self._report_deployment(deployment, now)
        for statefulset in self.store.objects(STATEFULSETS):
            self._sync_statefulset(statefulset)
        for daemonset in self.store.objects(DAEMONSETS):
            self._sync_daemonset(daemonset)
        for service in self.store.objects(SERVICE_RESOURCE):
            self._sync_service(service)

    def _sync_service(self, service: dict) -> None:
        """The load balancer of the one node: every LoadBalancer Service gets its address.

        Only the port the sandbox's Okera REST listener bound (written into Service
        cdas-rest-server by the server) really answers there.
        """
        balanced = service["spec"].get("type") == "LoadBalancer"
        status = {"loadBalancer": {"ingress": [{"ip": self.load_balancer_ip, "ipMode": "VIP"}]} if balanced else {}}
        self.store.write_status(SERVICE_RESOURCE, service["metadata"]["namespace"], service["metadata"]["name"],
                                status)

    def _collect_orphans(self) -> None:
        """Delete what a gone controller owned (background cascading deletion)."""
        owners = WORKLOADS + (REPLICASETS,)
        live = {owner["metadata"]["uid"] for rtype in owners for owner in self.store.objects(rtype)}
        for rtype in (REPLICASETS, PODS):
            for obj in self.store.objects(rtype):
                references = [reference for reference in obj["metadata"].get("ownerReferences") or []
                              if reference.get("controller")]
                if references and not any(reference.get("uid") in live for reference in references):
                    self.store.delete(rtype, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def _create_pod(self, rtype: ResourceType, workload: dict, name: str, labels: dict,
                    **spec_fields: str) -> None:
        template = copy.deepcopy(workload["spec"]["template"])
        template_meta = template.get("metadata") or {}
        meta = {"name": name, "namespace": workload["metadata"]["namespace"],
                "labels": dict(template_meta.get("labels") or {}, **labels),
                "ownerReferences": [_controller_reference(rtype, workload)]}
        if template_meta.get("annotations"):
            meta["annotations"] = dict(template_meta["annotations"])
        spec = dict(template["spec"], nodeName=NODE_NAME, **spec_fields)
        self.store.create(PODS, meta["namespace"], {"metadata": meta, "spec": spec})

    def _delete_pod(self, pod: dict) -> None:
        self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    # ---- Deployment -----------------------------------------------------------------------------

    def _sync_deployment(self, deployment: dict) -> None:
        """Create the ReplicaSet of the current template and set every ReplicaSet's size."""
        spec = deployment["spec"]
        replicas, current_hash = spec["replicas"], template_hash(spec["template"])
        replica_sets = _owned(self.store, REPLICASETS, deployment)
        new = next((rs for rs in replica_sets if rs["metadata"]["labels"].get(TEMPLATE_HASH_LABEL)
                    == current_hash), None)
        old = sorted((rs for rs in replica_sets if rs is not new), key=_revision)
        newest_old = max([_revision(rs) for rs in old] or [0])
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        max_surge, max_unavailable = _rolling_limits(spec)
        if new is None:
            busy = any(_size(rs) for rs in old)
            new = self._create_replica_set(deployment, current_hash, 0 if busy else replicas,
                                           newest_old + 1, replicas + max_surge)
        elif _revision(new) <= newest_old:  # a rollback makes an old ReplicaSet the newest again
            new = self._annotate(REPLICASETS, new, {REVISION_ANNOTATION: str(newest_old + 1)})
        if deployment["metadata"].get("annotations", {}).get(REVISION_ANNOTATION) != str(_revision(new)):
            self._annotate(DEPLOYMENTS, deployment, {REVISION_ANNOTATION: str(_revision(new))})
        sizes = {rs["metadata"]["name"]: _size(rs) for rs in old + [new]}
        if recreate:
            for rs in old:
                sizes[rs["metadata"]["name"]] = 0
            if not any(_owned(self.store, PODS, rs) for rs in old):
                sizes[new["metadata"]["name"]] = replicas
        else:
            self._roll(replicas, max_surge, max_unavailable, new, old, sizes)
        for rs in old + [new]:
            if sizes[rs["metadata"]["name"]] != _size(rs):
                self.store.patch(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"],
                                 "application/merge-patch+json",
                                 {"spec": {"replicas": sizes[rs["metadata"]["name"]]}})
        self._prune_history(spec, old, sizes)

    @staticmethod
    def _roll(replicas: int, max_surge: int, max_unavailable: int, new: dict, old: List[dict],
              sizes: dict) -> None:
        """The rolling update's sizes, as the deployment controller computes them."""
        new_name = new["metadata"]["name"]
        if sizes[new_name] > replicas:
            sizes[new_name] = replicas
        elif sizes[new_name] < replicas:
            room = replicas + max_surge - sum(sizes.values())
            sizes[new_name] += max(min(room, replicas - sizes[new_name]), 0)
        min_available = replicas - max_unavailable
        new_unavailable = sizes[new_name] - _available(new)
        budget = sum(sizes.values()) - min_available - new_unavailable
        if budget <= 0:
            return
        # First the old pods that are not available anyway, then available ones down to minAvailable.
        for rs in old:
            name = rs["metadata"]["name"]
            cut = max(min(budget, sizes[name] - _available(rs)), 0)
            sizes[name] -= cut
            budget -= cut
        spare = sum(_available(rs) for rs in old + [new]) - min_available
        for rs in old:
            name = rs["metadata"]["name"]
            cut = max(min(spare, sizes[name]), 0)
            sizes[name] -= cut
            spare -= cut

    def _prune_history(self, spec: dict, old: List[dict], sizes: dict) -> None:
        idle = [rs for rs in old if sizes[rs["metadata"]["name"]] == 0
                and not (rs.get("status") or {}).get("replicas")]
        for rs in idle[:max(len(idle) - spec.get("revisionHistoryLimit", 10), 0)]:
            self.store.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _annotate(self, rtype: ResourceType, obj: dict, annotations: dict) -> dict:
        changed = copy.deepcopy(obj)
        changed["metadata"].setdefault("annotations", {}).update(annotations)
        self.store.write_object(rtype, changed)
        return self.store.find(rtype, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def _create_replica_set(self, deployment: dict, current_hash: str, size: int, revision: int,
                            max_replicas: int) -> dict:
        spec = deployment["spec"]
        template = copy.deepcopy(spec["template"])
        template["metadata"]["labels"] = dict(template["metadata"].get("labels") or {},
                                              **{TEMPLATE_HASH_LABEL: current_hash})
        selector = copy.deepcopy(spec["selector"])
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{TEMPLATE_HASH_LABEL: current_hash})
        name = "%s-%s" % (deployment["metadata"]["name"], current_hash)
        meta = {"name": name, "labels": template["metadata"]["labels"],
                "annotations": {REVISION_ANNOTATION: str(revision),
                                "deployment.kubernetes.io/desired-replicas": str(spec["replicas"]),
                                "deployment.kubernetes.io/max-replicas": str(max_replicas)},
                "ownerReferences": [_controller_reference(DEPLOYMENTS, deployment)]}
        return self.store.create(REPLICASETS, deployment["metadata"]["namespace"], {
            "metadata": meta, "spec": {"replicas": size, "selector": selector, "template": template,
                                       "minReadySeconds": spec.get("minReadySeconds", 0)}})

    def _sync_replicaset(self, replica_set: dict) -> None:
        """Keep as many pods as the ReplicaSet's size; report them."""
        pods = _owned(self.store, PODS, replica_set)
        size = _size(replica_set)

        # Scaling down removes unready pods first, then the newest.
        def removal_order(pod: dict) -> tuple:
            return is_ready(pod), -_epoch(pod["metadata"]["creationTimestamp"])
        for pod in sorted(pods, key=removal_order)[:max(len(pods) - size, 0)]:
            self._delete_pod(pod)
        for _number in range(size - len(pods)):
            name = "%s-%s" % (replica_set["metadata"]["name"], random_suffix())
            self._create_pod(REPLICASETS, replica_set, name, {})
        pods = _owned(self.store, PODS, replica_set)
        ready = sum(1 for pod in pods if is_ready(pod))
        status = {"replicas": len(pods)}
        status.update(_without_zeros({"fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                                      "availableReplicas": ready,
                                      "observedGeneration": replica_set["metadata"]["generation"]}))
        self.store.write_status(REPLICASETS, replica_set["metadata"]["namespace"],
                                replica_set["metadata"]["name"], status)

    def _report_deployment(self, deployment: dict, now: float) -> None:
        spec, old_status = deployment["spec"], deployment.get("status") or {}
        replicas, current_hash = spec["replicas"], template_hash(spec["template"])
        replica_sets = _owned(self.store, REPLICASETS, deployment)
        new = [rs for rs in replica_sets if rs["metadata"]["labels"].get(TEMPLATE_HASH_LABEL) == current_hash]
        counted = {field: sum((rs.get("status") or {}).get(field, 0) for rs in replica_sets)
                   for field in ("replicas", "readyReplicas", "availableReplicas")}
        available = counted["availableReplicas"]
        updated = sum((rs.get("status") or {}).get("replicas", 0) for rs in new)
        replica_set = "%s-%s" % (deployment["metadata"]["name"], current_hash)
        complete = updated == replicas == counted["replicas"] == available
        enough = available >= replicas - _rolling_limits(spec)[1]
        conditions = [_condition(
            old_status, "Available", "True" if enough else "False",
            "MinimumReplicasAvailable" if enough else "MinimumReplicasUnavailable",
            "Deployment has minimum availability." if enough
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
            "observedGeneration": deployment["metadata"]["generation"], "replicas": counted["replicas"],
            "updatedReplicas": updated, "readyReplicas": counted["readyReplicas"],
            "availableReplicas": available,
            "unavailableReplicas": max(sum(_size(rs) for rs in replica_sets) - available, 0)})
        status["conditions"] = conditions
        self.store.write_status(DEPLOYMENTS, deployment["metadata"]["namespace"],
                                deployment["metadata"]["name"], status)

    # ---- StatefulSet ----------------------------------------------------------------------------

    def _sync_statefulset(self, statefulset: dict) -> None:
        spec, name = statefulset["spec"], statefulset["metadata"]["name"]
        replicas = spec["replicas"]
        update_revision = "%s-%s" % (name, template_hash(spec["template"]))
        pods = {pod["metadata"]["name"]: pod for pod in _owned(self.store, PODS, statefulset)}
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
                self._create_pod(STATEFULSETS, statefulset, pod_name, {
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
        pods = _owned(self.store, PODS, statefulset)
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

    def _sync_daemonset(self, daemonset: dict) -> None:
        spec, name = daemonset["spec"], daemonset["metadata"]["name"]
        revision = template_hash(spec["template"])
        pods = _owned(self.store, PODS, daemonset)
        on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
        current = [pod for pod in pods if pod["metadata"]["labels"].get(REVISION_LABEL) == revision]
        for pod in pods:
            if pod not in current and not on_delete:
                self._delete_pod(pod)  # one node, maxUnavailable 1: replace in place
        if not pods or (not current and not on_delete):
            self._create_pod(DAEMONSETS, daemonset, "%s-%s" % (name, random_suffix()), {
                REVISION_LABEL: revision,
                "pod-template-generation": str(daemonset["metadata"]["generation"])})
        self._report_daemonset(daemonset, revision)

    def _report_daemonset(self, daemonset: dict, revision: str) -> None:
        pods = _owned(self.store, PODS, daemonset)
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
