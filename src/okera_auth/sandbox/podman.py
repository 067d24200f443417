# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real containers for the sandbox's other pods: ``okera-auth-sandbox serve --podman``.

With ``--podman``, a pod that is not one of the simulated Okera services (label
``app.kubernetes.io/part-of: okera``) runs for real under ``podman kube play``: its containers
are started from their images (which must be in podman's local storage: no registry is asked),
and ``kubectl get pods`` / ``kubectl logs`` show what they really do. A container that exits is
started again after ``--crash-backoff`` seconds, as a kubelet does for ``restartPolicy: Always``
(``OnFailure``: only after a failure; ``Never``: it stays terminated), and shows
``CrashLoopBackOff`` meanwhile. Deleting the pod removes its podman pod; stopping the sandbox
removes every pod it started.

What the kubelet does that podman 4.3 does not is done here before ``kube play``
(``for_podman``): the environment is resolved from Secrets and ConfigMaps by the sandbox's
kubelet (podman cannot follow ``secretKeyRef``); Secret and ConfigMap volumes get their objects
from the sandbox's store, decoded; each ``emptyDir`` is a podman volume made as a kubelet makes
it (root, group fsGroup, mode 2777, a tmpfs of ``sizeLimit`` for ``medium: Memory``), as podman
would give it to whichever container mounts it first; ``fsGroup`` is added to
``supplementalGroups``; ``ports``, long annotations and probes are dropped (podman publishes the
ports, refuses annotation values over 63 characters, and turns a liveness probe into a broken
healthcheck). Readiness follows ``readinessProbe.exec``, run with ``podman exec``; a pod without
one is ready while its containers run. The pods have no network (``--network none``): their
containers share the pod's loopback and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from okera_auth.module_utils.errors import shown
from .errors import SandboxError
from .kubelet import NODE_IP, MissingReference, pod_ip, resolve_environment
from .resources import CONFIGMAPS, SECRETS
from .store import Store, timestamp

OKERA_LABEL = ("app.kubernetes.io/part-of", "okera")
LOG_LINES = 100
POLL_SECONDS = 0.5
MAX_ANNOTATION = 63  # podman 4.3 refuses longer annotation values (Kubernetes allows 256 KiB)


class PodmanError(SandboxError):
    """A podman command failed."""


def run_podman(args: Sequence[str], env: Optional[Mapping[str, str]] = None, timeout: float = 120,
               check: bool = True, input_text: Optional[str] = None) -> subprocess.CompletedProcess:
    """podman with ``args``, configured by ``env`` (CONTAINERS_CONF, ...) or this process's environment."""
    try:
        done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False,
                              env=dict(env) if env is not None else None, input=input_text)
    except FileNotFoundError:
        raise PodmanError("podman is not installed (apt-get install podman)") from None
    if check and done.returncode:
        message = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise PodmanError("podman %s: %s" % (args[0] if args else "", message[-1] if message else "exit %d" % done.returncode))
    return done


# ---- manifests as podman runs them -------------------------------------------------------------

@dataclass(frozen=True)
class EmptyDir:
    """A podman volume to make before `kube play`, standing for an emptyDir."""

    name: str
    group: int
    mode: int
    memory_bytes: Optional[int]  # a tmpfs of this size (medium: Memory), else a directory on disk


@dataclass
class Adapted:
    """Manifests as podman runs them, each change made for it (as text), the volumes to make."""

    documents: List[Dict[str, Any]]
    changes: List[str] = field(default_factory=list)
    empty_dirs: List[EmptyDir] = field(default_factory=list)


_UNITS = {"": 1, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3}


def quantity_bytes(text: str) -> int:
    """Bytes of a Kubernetes quantity such as 16Mi (the units a sizeLimit uses)."""
    match = re.fullmatch(r"([0-9]+)(|k|M|G|Ki|Mi|Gi)", str(text))
    if not match:
        raise SandboxError("unsupported quantity %s" % shown(text))
    return int(match.group(1)) * _UNITS[match.group(2)]


def pod_spec_of(document: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    if document.get("kind") == "Pod":
        return document["spec"]
    if document.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return document["spec"]["template"]["spec"]
    return None


def for_podman(documents: Sequence[Dict[str, Any]]) -> Adapted:
    """The manifests with what podman 4.3 cannot do changed (see the module's docstring)."""
    adapted = Adapted([copy.deepcopy(document) for document in documents if document])
    for document in adapted.documents:
        name = "%s/%s" % (document.get("kind"), document.get("metadata", {}).get("name"))
        spec = pod_spec_of(document)
        metadatas = [document.get("metadata", {})]
        if spec is not None and document.get("kind") != "Pod":
            metadatas.append(document["spec"]["template"].get("metadata", {}))
        for metadata in metadatas:
            for key, value in list((metadata.get("annotations") or {}).items()):
                if len(str(value)) > MAX_ANNOTATION:
                    del metadata["annotations"][key]
                    adapted.changes.append("%s: annotation %s dropped (value over %d characters)" % (name, key, MAX_ANNOTATION))
        if spec is None:
            continue
        for volume in spec.get("volumes", []):
            if "secret" in volume and "optional" not in volume["secret"]:
                volume["secret"]["optional"] = False
                adapted.changes.append("%s: volume %s: secret.optional: false" % (name, volume["name"]))
        security = spec.get("securityContext") or {}
        if "fsGroup" in security and security["fsGroup"] not in security.get("supplementalGroups", []):
            security["supplementalGroups"] = security.get("supplementalGroups", []) + [security["fsGroup"]]
            adapted.changes.append("%s: fsGroup %s added to supplementalGroups" % (name, security["fsGroup"]))
        for volume in spec.get("volumes", []):
            if "emptyDir" in volume:
                empty_dir = volume.pop("emptyDir") or {}
                claim = "%s-%s" % (document["metadata"]["name"], volume["name"])
                volume["persistentVolumeClaim"] = {"claimName": claim}
                memory = empty_dir.get("medium") == "Memory"
                size = quantity_bytes(empty_dir["sizeLimit"]) if memory and "sizeLimit" in empty_dir else None
                adapted.empty_dirs.append(EmptyDir(claim, int(security.get("fsGroup", 0)),
                                                   0o2777 if "fsGroup" in security else 0o777,
                                                   (size or 64 * 1024 ** 2) if memory else None))
                adapted.changes.append("%s: volume %s: emptyDir made as podman volume %s" % (name, volume["name"], claim))
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            for key in ("ports", "startupProbe", "readinessProbe", "livenessProbe"):
                if container.pop(key, None) is not None:
                    adapted.changes.append("%s: container %s: %s dropped" % (name, container["name"], key))
    return adapted


def make_empty_dir(empty_dir: EmptyDir, env: Optional[Mapping[str, str]] = None) -> None:
    """The volume as a kubelet makes an emptyDir: root, group fsGroup, setgid and world-writable."""
    if empty_dir.memory_bytes is not None:
        options = "mode=%o,uid=0,gid=%d,nr_blocks=%d" % (empty_dir.mode, empty_dir.group, -(-empty_dir.memory_bytes // 4096))
        run_podman(["volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=" + options,
                    empty_dir.name], env)
    else:
        run_podman(["volume", "create", "--opt", "o=uid=0,gid=%d" % empty_dir.group, empty_dir.name], env)
        mountpoint = run_podman(["volume", "inspect", "--format", "{{.Mountpoint}}", empty_dir.name], env).stdout.strip()
        os.chmod(mountpoint, empty_dir.mode)


def pod_names(documents: Sequence[Dict[str, Any]]) -> List[str]:
    """The pods `kube play` makes of these manifests (a Deployment's is <name>-pod-0)."""
    names = []
    for document in documents:
        if document.get("kind") == "Pod":
            names.append(document["metadata"]["name"])
        elif pod_spec_of(document) is not None:
            names.append(document["metadata"]["name"] + "-pod-0")
    return names


def secret_names(documents: Sequence[Dict[str, Any]]) -> List[str]:
    """The Secrets of these manifests and those their pods mount (podman makes a secret and a volume of each)."""
    names = {document["metadata"]["name"] for document in documents if document.get("kind") == "Secret"}
    for document in documents:
        spec = pod_spec_of(document) or {}
        names.update(volume["secret"]["secretName"] for volume in spec.get("volumes", []) if "secret" in volume)
    return sorted(names)


def remove_played(pods: Sequence[str], secrets: Sequence[str], volumes: Sequence[str],
                  env: Optional[Mapping[str, str]] = None) -> None:
    """Remove what `kube play` made: the pods, each Secret's podman secret and volume (which
    `kube down` leaves in 4.3), and the emptyDir volumes."""
    for pod in pods:
        run_podman(["pod", "rm", "--force", "--time", "2", pod], env, timeout=180, check=False)
    for secret in secrets:
        run_podman(["secret", "rm", secret], env, check=False)
        run_podman(["volume", "rm", "--force", secret], env, check=False)
    for volume in volumes:
        run_podman(["volume", "rm", "--force", volume], env, check=False)


# ---- the sandbox's pods, run by podman ---------------------------------------------------------

def is_okera_pod(pod: dict) -> bool:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(OKERA_LABEL[0]) == OKERA_LABEL[1]


def _podman_name(pod: dict) -> str:
    meta = pod["metadata"]
    return "%s-%s-%s" % (meta["namespace"], meta["name"], meta["uid"][:8])


# podman refuses a secret (or volume) name over 64 characters; a Deployment's pod name and its
# key Secret's name together (default-token-client-7d9f8c6b5d-x2x4q-1a2b3c4d-token-client-authserver-key) exceed it.
PODMAN_NAME_LIMIT = 64


def _local_name(pod_name: str, source: str) -> str:
    """The pod's own name for a Secret or ConfigMap it mounts: both names, shortened with a hash when too long."""
    name = "%s-%s" % (pod_name, source)
    if len(name) <= PODMAN_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return "%s-%s" % (name[:PODMAN_NAME_LIMIT - len(digest) - 1].rstrip("-."), digest)


def _decoded(value: str) -> str:
    try:
        return base64.b64decode(value).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def pod_documents(store: Store, pod: dict) -> List[Dict[str, Any]]:
    """The pod, its Secrets and ConfigMaps as `kube play` takes them: environments resolved by
    the sandbox's kubelet, Secret and ConfigMap volumes named after the pod (podman's names are
    global) and their data decoded, the restarts left to the sandbox (restartPolicy Never)."""
    name, namespace = _podman_name(pod), pod["metadata"]["namespace"]
    spec = copy.deepcopy(pod["spec"])
    for key in ("nodeName", "serviceAccountName", "serviceAccount", "automountServiceAccountToken",
                "terminationGracePeriodSeconds", "schedulerName", "priority", "enableServiceLinks"):
        spec.pop(key, None)
    spec["restartPolicy"] = "Never"
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        container["imagePullPolicy"] = "Never"  # the images come from podman's storage, never a registry
        environment = resolve_environment(store, pod, container)
        container.pop("envFrom", None)
        container["env"] = [{"name": key, "value": value} for key, value in environment.items()]
    documents: List[Dict[str, Any]] = []
    for volume in spec.get("volumes", []):
        for kind, rtype, reference in (("secret", SECRETS, "secretName"), ("configMap", CONFIGMAPS, "name")):
            if kind not in volume:
                continue
            source = store.find(rtype, namespace, volume[kind].get(reference, ""))
            if source is None:
                if volume[kind].get("optional"):
                    continue
                raise MissingReference('%s "%s" not found' % (kind.lower(), volume[kind].get(reference, "")))
            local = _local_name(name, volume[kind][reference])
            volume[kind][reference] = local
            if kind == "secret":
                data = {key: base64.b64encode(_decoded(value).encode("utf-8")).decode("ascii")
                        for key, value in (source.get("data") or {}).items()}
                documents.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": local},
                                  "type": source.get("type", "Opaque"), "data": data})
            else:
                documents.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": local},
                                  "data": dict(source.get("data") or {})})
    labels = dict((pod["metadata"].get("labels") or {}), **{"okera.auth/sandbox-pod": pod["metadata"]["uid"]})
    documents.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "labels": labels,
                                   "annotations": dict(pod["metadata"].get("annotations") or {})},
                      "spec": spec})
    return documents


@dataclass
class _Container:
    state: str = "creating"  # creating, running, crashed, restarting, terminated, config_error
    restarts: int = 0
    message: Optional[str] = None
    reason: Optional[str] = None
    exit_code: Optional[int] = None
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    retry_at: float = 0.0
    ready: bool = False
    log: List[str] = field(default_factory=list)
    last_probe: float = 0.0


@dataclass
class _Pod:
    """What podman runs for one of the sandbox's pods."""

    uid: str
    name: str  # the podman pod's
    spec: dict  # the sandbox pod's spec (probes, restart policy)
    created_at: float
    retry_at: float = 0.0  # when to read its Secrets and ConfigMaps again after a config error
    documents: Optional[List[Dict[str, Any]]] = None
    adapted: Optional[Adapted] = None
    played: bool = False
    error: Optional[str] = None
    containers: Dict[str, _Container] = field(default_factory=dict)


class PodmanPods:
    """Runs the sandbox's non-Okera pods with podman, in a thread of its own; the kubelet asks
    it for each such pod's status (``sync``) and tells it which pods still exist (``prune``)."""

    def __init__(self, store: Store, crash_backoff: float = 2.0, env: Optional[Mapping[str, str]] = None,
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.store = store
        self.crash_backoff = crash_backoff
        self.env = dict(env) if env is not None else None
        self.log = log or (lambda line: None)
        self.lock = threading.Lock()
        self.pods: Dict[str, _Pod] = {}
        self.removed: List[_Pod] = []
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def check(self) -> None:
        """Fail at start, with a line to act on, when podman cannot run containers here."""
        run_podman(["info", "--format", "{{.Host.OCIRuntime.Name}}"], self.env, timeout=60)

    def handles(self, pod: dict) -> bool:
        return not is_okera_pod(pod)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._work, name="sandbox-podman", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=120)
        with self.lock:
            leftover = list(self.pods.values()) + self.removed
            self.pods, self.removed = {}, []
        for pod in leftover:
            self._remove(pod)

    # -- called by the kubelet (simulation thread) --

    def sync(self, pod: dict, now: float) -> dict:
        """The pod's status from what podman last reported; a new pod is queued for `kube play`."""
        uid = pod["metadata"]["uid"]
        with self.lock:
            known = self.pods.get(uid)
            if known is None:
                known = self.pods[uid] = _Pod(uid, _podman_name(pod), copy.deepcopy(pod["spec"]), now)
                for container in pod["spec"]["containers"]:
                    known.containers[container["name"]] = _Container()
            if known.documents is None and now >= known.retry_at:
                # As a kubelet retries: a missing Secret or ConfigMap may be created later.
                try:
                    known.documents, known.error = pod_documents(self.store, pod), None
                    self.wake.set()
                except (MissingReference, SandboxError) as error:
                    known.error, known.retry_at = str(error), now + self.crash_backoff
            self._mirror_runtime(pod, known)
            return self._status(pod, known, now)

    def prune(self, uids: Sequence[str]) -> None:
        """Forget (and remove from podman) the pods whose uid is not in ``uids``."""
        wanted = set(uids)
        with self.lock:
            for uid in [uid for uid in self.pods if uid not in wanted]:
                self.removed.append(self.pods.pop(uid))
                self.wake.set()

    def _mirror_runtime(self, pod: dict, known: _Pod) -> None:
        """What `kubectl logs` and the status report read (the kubelet's runtime record)."""
        runtime = self.store.pod_runtime.setdefault(pod["metadata"]["uid"], {"podman": known.name, "containers": {}})
        mirrored = {name: {"state": "running" if container.state == "running" else container.state,
                           "restarts": container.restarts, "message": container.message, "log": list(container.log)}
                    for name, container in known.containers.items()}
        if runtime.get("containers") != mirrored:
            runtime["containers"] = mirrored
            self.store.mark_dirty()

    # -- the worker thread --

    def _work(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(POLL_SECONDS)
            self.wake.clear()
            try:
                self._step()
            except (PodmanError, subprocess.TimeoutExpired, OSError, ValueError) as error:
                self.log("podman: %s" % error)

    def _step(self) -> None:
        with self.lock:
            removed, self.removed = self.removed, []
            new = [pod for pod in self.pods.values() if not pod.played and pod.error is None]
        for pod in removed:
            self._remove(pod)
        for pod in new:
            self._play(pod)
        self._poll()

    def _play(self, pod: _Pod) -> None:
        adapted = for_podman(pod.documents or [])
        try:
            for empty_dir in adapted.empty_dirs:
                make_empty_dir(empty_dir, self.env)
            # JSON is YAML: one document each, as kube play reads them (no PyYAML needed).
            self._kube_play("".join("---\n%s\n" % json.dumps(document) for document in adapted.documents))
        except PodmanError as error:
            with self.lock:
                pod.error = str(error)
            self.log("podman: pod %s: %s" % (pod.name, error))
        with self.lock:
            pod.adapted = adapted
            pod.played = True

    def _kube_play(self, text: str) -> None:
        """`podman kube play` of the manifests, from a private file removed at once (they hold Secrets)."""
        with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="okera-sandbox-pod-") as handle:
            os.chmod(handle.name, 0o600)
            handle.write(text)
            handle.flush()
            run_podman(["kube", "play", "--network", "none", handle.name], self.env, timeout=300)

    def _remove(self, pod: _Pod) -> None:
        documents = (pod.adapted.documents if pod.adapted else pod.documents) or []
        volumes = [empty_dir.name for empty_dir in pod.adapted.empty_dirs] if pod.adapted else []
        remove_played([pod.name], secret_names(documents), volumes, self.env)

    def _poll(self) -> None:
        """Each played pod's containers as podman sees them; exited ones restarted after the back-off."""
        with self.lock:
            played = {pod.name: pod for pod in self.pods.values() if pod.played and pod.error is None}
        if not played:
            return
        listing = json.loads(run_podman(["ps", "--all", "--format", "json"], self.env).stdout or "[]")
        seen = {name: entry for entry in listing for name in entry.get("Names") or []}
        now = self.store.clock()
        for pod in played.values():
            for container_name, container in list(pod.containers.items()):
                entry = seen.get("%s-%s" % (pod.name, container_name))
                self._update(pod, container_name, container, entry, now)

    def _update(self, pod: _Pod, name: str, container: _Container, entry: Optional[dict], now: float) -> None:
        full_name = "%s-%s" % (pod.name, name)
        if entry is None:
            with self.lock:
                container.state, container.message = "config_error", "podman has no container %s" % full_name
            return
        lines = self._log_lines(full_name)
        state = entry.get("State", "")
        policy = pod.spec.get("restartPolicy", "Always")
        spec = next((c for c in pod.spec["containers"] if c["name"] == name), {})
        with self.lock:
            container.log = lines
            if state == "running":
                if container.state != "running":
                    container.state, container.started_at, container.message = "running", now, None
                    container.ready = "readinessProbe" not in spec
            elif state in ("exited", "stopped"):
                exit_code = int(entry.get("ExitCode") or 0)
                if container.state in ("running", "creating", "restarting"):
                    restart = policy == "Always" or (policy == "OnFailure" and exit_code != 0)
                    container.exit_code, container.finished_at, container.ready = exit_code, now, False
                    container.reason = "Completed" if exit_code == 0 else "Error"
                    container.message = (lines[-1] if lines else "exit code %d" % exit_code)[:300]
                    if restart:
                        container.state, container.retry_at = "crashed", now + self.crash_backoff
                        container.restarts += 1
                    else:
                        container.state = "terminated"
                due = container.state == "crashed" and now >= container.retry_at
            else:
                due = False
        if state in ("exited", "stopped") and due:
            with self.lock:
                container.state = "restarting"  # its next exit is a new crash
            run_podman(["start", full_name], self.env, check=False)
        if state == "running" and "readinessProbe" in spec:
            self._probe(full_name, container, spec["readinessProbe"], now)

    def _log_lines(self, full_name: str) -> List[str]:
        logs = run_podman(["logs", "--tail", str(LOG_LINES), full_name], self.env, check=False)
        return (logs.stdout + logs.stderr).splitlines()[-LOG_LINES:]

    def _probe(self, full_name: str, container: _Container, probe: dict, now: float) -> None:
        command = (probe.get("exec") or {}).get("command")
        if not command or now - container.last_probe < float(probe.get("periodSeconds", 10)):
            return
        done = run_podman(["exec", full_name, *command], self.env, check=False,
                          timeout=float(probe.get("timeoutSeconds", 1)) + 10)
        ready = done.returncode == 0
        # The log was read before the probe: what the container logged on its way to ready (where it
        # listens) is to be in `kubectl logs` as soon as it shows ready.
        lines = self._log_lines(full_name) if ready and not container.ready else None
        with self.lock:
            container.last_probe, container.ready = now, ready
            if lines is not None:
                container.log = lines

    # -- status in the kubelet's words --

    def _status(self, pod: dict, known: _Pod, now: float) -> dict:
        statuses = []
        for spec in pod["spec"]["containers"]:
            container = known.containers.get(spec["name"], _Container())
            status = {"name": spec["name"], "image": spec["image"], "imageID": "podman://%s" % spec["image"],
                      "restartCount": container.restarts, "ready": container.state == "running" and container.ready,
                      "started": container.state == "running", "lastState": {}}
            if container.restarts and container.finished_at is not None:
                status["lastState"] = {"terminated": {"exitCode": container.exit_code, "reason": container.reason,
                                                      "message": container.message or "",
                                                      "finishedAt": timestamp(container.finished_at)}}
            if known.error is not None:
                reason = ("CreateContainerConfigError" if not known.played
                          else "ErrImageNeverPull" if re.search(r"image|pull", known.error, re.I) else "CreateContainerError")
                status["state"] = {"waiting": {"reason": reason, "message": known.error}}
            elif container.state == "running":
                status["state"] = {"running": {"startedAt": timestamp(container.started_at or now)}}
                status["containerID"] = "podman://%s-%s" % (known.name, spec["name"])
            elif container.state in ("crashed", "restarting"):
                status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off %gs restarting failed "
                                               "container %s in pod %s" % (self.crash_backoff, spec["name"], pod["metadata"]["name"])}}
            elif container.state == "terminated":
                status["state"] = {"terminated": {"exitCode": container.exit_code, "reason": container.reason,
                                                  "message": container.message or "",
                                                  "finishedAt": timestamp(container.finished_at or now)}}
            else:
                status["state"] = {"waiting": {"reason": "ContainerCreating"}}
            statuses.append(status)
        ready = bool(statuses) and all(status["ready"] for status in statuses)
        terminated = [status["state"]["terminated"] for status in statuses if "terminated" in status["state"]]
        if terminated and len(terminated) == len(statuses):
            phase = "Succeeded" if all(state["exitCode"] == 0 for state in terminated) else "Failed"
        elif any("running" in status["state"] or "terminated" in status["state"] or
                 status["state"]["waiting"]["reason"] == "CrashLoopBackOff" for status in statuses):
            phase = "Running"
        else:
            phase = "Pending"
        created = timestamp(known.created_at)
        condition = "True" if ready else "False"
        conditions = [{"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": created}
                      for kind, value in (("Initialized", "True"), ("Ready", condition),
                                          ("ContainersReady", condition), ("PodScheduled", "True"))]
        return {"phase": phase, "conditions": conditions, "hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}],
                "podIP": pod_ip(pod), "podIPs": [{"ip": pod_ip(pod)}], "startTime": created,
                "containerStatuses": statuses, "qosClass": "Burstable"}
