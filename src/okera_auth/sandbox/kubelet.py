# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated node: starts pods' containers, resolves their environment, reports status.

A container's environment is resolved from Secrets and ConfigMaps when it starts, as a
real kubelet does, so a pod only sees a new ``SYSTEM_TOKEN_0`` after a restart. What a
container does once started is decided by ``start_check`` (the Okera service check).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from .resources import CONFIGMAPS, PODS, SECRETS
from .store import Store, timestamp

NODE_NAME = "okera-sandbox-node"
NODE_IP = "10.89.0.1"
LOG_LINES = 100  # what `kubectl logs` shows of a container: its last starts and failures


@dataclass(frozen=True)
class StartOutcome:
    """What happened when a container started: ready, or crashed with a message."""

    ready: bool
    message: Optional[str] = None
    expires_at: Optional[float] = None  # the container fails at this time (its token expires)
    # What the running container knows from its start (public configuration, never a token):
    # kept with the container while it runs, for whatever serves requests "from" it.
    details: Optional[dict] = None


StartCheck = Callable[[Dict[str, str], str, Store], StartOutcome]


class MissingReference(Exception):
    """A container's environment names a Secret, ConfigMap or key that does not exist."""


def _decoded(value: str) -> str:
    try:
        return base64.b64decode(value).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def _source_data(store: Store, namespace: str, reference: dict, secret: bool) -> Optional[Dict[str, str]]:
    rtype = SECRETS if secret else CONFIGMAPS
    obj = store.find(rtype, namespace, reference.get("name", ""))
    if obj is None:
        if reference.get("optional"):
            return None
        raise MissingReference('%s "%s" not found' % ("secret" if secret else "configmap",
                                                      reference.get("name", "")))
    data = obj.get("data") or {}
    return {key: _decoded(value) for key, value in data.items()} if secret else dict(data)


def _field_value(pod: dict, path: str) -> str:
    values = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"],
              "metadata.uid": pod["metadata"]["uid"], "spec.nodeName": NODE_NAME,
              "status.podIP": pod_ip(pod), "status.hostIP": NODE_IP}
    return values.get(path, "")


def resolve_environment(store: Store, pod: dict, container: dict) -> Dict[str, str]:
    """The environment variables of ``container`` as they would be when it starts now."""
    namespace = pod["metadata"]["namespace"]
    environment: Dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for field, secret in (("secretRef", True), ("configMapRef", False)):
            if field in source:
                data = _source_data(store, namespace, source[field], secret)
                for key, value in (data or {}).items():
                    environment[source.get("prefix", "") + key] = value
    for variable in container.get("env") or []:
        name, origin = variable.get("name", ""), variable.get("valueFrom")
        if not origin:
            environment[name] = variable.get("value", "")
            continue
        for field, secret in (("secretKeyRef", True), ("configMapKeyRef", False)):
            reference = origin.get(field)
            if reference is None:
                continue
            data = _source_data(store, namespace, reference, secret)
            key = reference.get("key", "")
            if data is not None and key in data:
                environment[name] = data[key]
            elif not reference.get("optional"):
                raise MissingReference("couldn't find key %s in %s %s/%s" % (
                    key, "Secret" if secret else "ConfigMap", namespace, reference.get("name", "")))
        if "fieldRef" in origin:
            environment[name] = _field_value(pod, origin["fieldRef"].get("fieldPath", ""))
    return environment


def _log(state: dict, now: float, line: str) -> None:
    lines = state.setdefault("log", [])
    lines.append("%s %s" % (timestamp(now), line))
    del lines[:-LOG_LINES]


def container_log(store: Store, pod: dict, container: str) -> List[str]:
    """The simulated log lines of a pod's container (oldest first)."""
    runtime = store.pod_runtime.get(pod["metadata"]["uid"]) or {}
    return list(((runtime.get("containers") or {}).get(container) or {}).get("log") or [])


def running_containers(store: Store, pod: dict) -> List[dict]:
    """The runtime state of each of the pod's containers that is running now (copies)."""
    runtime = store.pod_runtime.get(pod["metadata"]["uid"]) or {}
    return [dict(state, name=name) for name, state in sorted((runtime.get("containers") or {}).items())
            if state.get("state") == "running"]


def last_failure(store: Store, pod: dict) -> Optional[str]:
    """Why the pod's containers last failed to start or stopped, if they did."""
    runtime = store.pod_runtime.get(pod["metadata"]["uid"]) or {}
    messages = [state.get("message") for state in (runtime.get("containers") or {}).values()
                if state.get("state") != "running" and state.get("message")]
    return messages[0] if messages else None


def pod_ip(pod: dict) -> str:
    digest = hashlib.sha256(pod["metadata"]["uid"].encode("ascii")).digest()
    return "10.89.%d.%d" % (digest[0], 2 + digest[1] % 250)


def is_ready(pod: dict) -> bool:
    return any(condition.get("type") == "Ready" and condition.get("status") == "True"
               for condition in (pod.get("status") or {}).get("conditions") or [])


def is_running_and_ready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_ready(pod)


class Kubelet:
    """Advances every pod: scheduling, container starts, crashes, restarts, readiness."""

    def __init__(self, store: Store, start_check: StartCheck, start_delay: float = 0.5,
                 crash_backoff: float = 2.0, runtime=None) -> None:
        """``runtime`` runs the pods it ``handles`` for real (``podman.PodmanPods``); the others are simulated."""
        self.store = store
        self.start_check = start_check
        self.start_delay = start_delay
        self.crash_backoff = crash_backoff
        self.runtime = runtime

    def sync(self, now: float) -> None:
        pods = self.store.objects(PODS)
        for pod in pods:
            self._sync_pod(pod, now)
        if self.runtime is not None:
            self.runtime.prune([pod["metadata"]["uid"] for pod in pods])

    def _sync_pod(self, pod: dict, now: float) -> None:
        uid = pod["metadata"]["uid"]
        runtime = self.store.pod_runtime.get(uid)
        if runtime is None:
            runtime = self.store.pod_runtime[uid] = {
                "scheduledAt": now, "startAt": now + self.start_delay, "readySince": None,
                "readyChangedAt": now, "containers": {}}
            self.store.mark_dirty()
        if not pod["spec"].get("nodeName"):
            scheduled = dict(pod, spec=dict(pod["spec"], nodeName=NODE_NAME))
            self.store.write_object(PODS, scheduled)
            pod = scheduled
        if self.runtime is not None and self.runtime.handles(pod):
            self.store.write_status(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                    self.runtime.sync(pod, now))
            return
        if now >= runtime["startAt"]:
            for container in pod["spec"]["containers"]:
                self._sync_container(pod, container, runtime, now)
        self.store.write_status(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                self._status(pod, runtime, now))

    def _sync_container(self, pod: dict, container: dict, runtime: dict, now: float) -> None:
        state = runtime["containers"].setdefault(container["name"], {"state": "creating", "restarts": 0})
        expires_at = state.get("expiresAt")
        if state["state"] == "running" and expires_at is not None and now >= expires_at:
            self._crash(state, now, state.get("expiryMessage") or "the container stopped")
            _log(state, now, "stopping: %s" % state["message"])
            return
        if state["state"] == "running" or now < state.get("retryAt", 0):
            return
        self.store.mark_dirty()
        try:
            environment = resolve_environment(self.store, pod, container)
        except MissingReference as error:
            state.update(state="config_error", message=str(error), retryAt=now + self.crash_backoff)
            _log(state, now, "cannot start: %s" % error)
            return
        outcome = self.start_check(environment, pod["metadata"]["namespace"], self.store)
        if not outcome.ready:
            self._crash(state, now, outcome.message or "the container exited")
            _log(state, now, "exiting: %s" % state["message"])
            return
        state.update(state="running", startedAt=now, message=None, expiresAt=outcome.expires_at,
                     expiryMessage="the system token expired" if outcome.expires_at else None,
                     details=outcome.details)
        _log(state, now, outcome.message or "started")

    def _crash(self, state: dict, now: float, message: str) -> None:
        state.update(state="crashed", message=message, finishedAt=now, details=None,
                     restarts=state["restarts"] + 1, retryAt=now + self.crash_backoff)
        self.store.mark_dirty()

    def _container_status(self, pod: dict, container: dict, runtime: dict) -> dict:
        state = runtime["containers"].get(container["name"], {"state": "creating", "restarts": 0})
        status = {"name": container["name"], "image": container["image"],
                  "imageID": "sandbox://%s" % container["image"], "restartCount": state["restarts"],
                  "ready": state["state"] == "running", "started": state["state"] == "running",
                  "lastState": {}}
        if state["restarts"]:
            status["lastState"] = {"terminated": {
                "exitCode": 1, "reason": "Error", "message": state.get("message") or "",
                "finishedAt": timestamp(state.get("finishedAt", runtime["startAt"]))}}
        if state["state"] in ("running", "crashed"):
            status["containerID"] = "sandbox://%s-%s-%d" % (
                pod["metadata"]["uid"][:8], container["name"], state["restarts"])
        if state["state"] == "running":
            status["state"] = {"running": {"startedAt": timestamp(state["startedAt"])}}
        elif state["state"] == "crashed":
            status["state"] = {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off restarting failed container %s in pod %s: %s"
                           % (container["name"], pod["metadata"]["name"], state.get("message") or "")}}
        elif state["state"] == "config_error":
            status["state"] = {"waiting": {"reason": "CreateContainerConfigError",
                                           "message": state.get("message") or ""}}
        else:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return status

    def _status(self, pod: dict, runtime: dict, now: float) -> dict:
        containers = [self._container_status(pod, container, runtime)
                      for container in pod["spec"]["containers"]]
        ready = all(status["ready"] for status in containers)
        if ready != bool(runtime["readySince"]):
            runtime["readySince"] = now if ready else None
            runtime["readyChangedAt"] = now
            self.store.mark_dirty()
        started = all("waiting" not in status["state"] or status["state"]["waiting"]["reason"]
                      == "CrashLoopBackOff" for status in containers)
        scheduled = timestamp(runtime["scheduledAt"])
        changed = timestamp(runtime["readyChangedAt"])
        not_ready = [status["name"] for status in containers if not status["ready"]]
        reason = {} if ready else {
            "reason": "ContainersNotReady",
            "message": "containers with unready status: [%s]" % " ".join(not_ready)}
        conditions = [
            {"type": "PodReadyToStartContainers", "status": "True" if now >= runtime["startAt"] else "False",
             "lastProbeTime": None, "lastTransitionTime": scheduled},
            {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": scheduled},
            dict({"type": "Ready", "status": "True" if ready else "False", "lastProbeTime": None,
                  "lastTransitionTime": changed}, **reason),
            dict({"type": "ContainersReady", "status": "True" if ready else "False", "lastProbeTime": None,
                  "lastTransitionTime": changed}, **reason),
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": scheduled},
        ]
        return {"phase": "Running" if started and now >= runtime["startAt"] else "Pending",
                "conditions": conditions, "hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}],
                "podIP": pod_ip(pod), "podIPs": [{"ip": pod_ip(pod)}], "startTime": scheduled,
                "containerStatuses": containers, "qosClass": "BestEffort"}
