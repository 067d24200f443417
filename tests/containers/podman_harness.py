"""podman for the container tests: a private configuration and storage, `kube play` with teardown.

Everything podman keeps lives under the checkout's ``.cache/podman`` (images, the layer cache,
the networks' definitions) and ``/run/okera-auth-podman`` (the state of running containers); the
host's own podman configuration and storage are never read or changed. The pods run on a network
the tests create with ``podman network create --internal``: a bridge without an address on the
host, no gateway and no masquerading, so its containers reach each other and nothing else (no
route out, not even to the host). podman 4.3 here uses CNI (containernetworking-plugins), whose
host-local address allocation keeps its state in /var/lib/cni/networks/<network>, which podman
leaves behind when it removes a network: the harness removes it with the network. The settings
are the ones this kind of machine needs (runc, as crun refuses hybrid cgroups; cgroupfs and a
file event log, as PID 1 is not systemd; lowered ulimits), and no registry is ever asked for an
image.

What podman 4.3 does not do as a kubelet does, and what ``for_podman``
(okera_auth.sandbox.podman, which the sandbox's ``--podman`` uses too) changes for it (each
change is listed in what it returns, so a test can say what it ran):

- a Secret volume without ``optional`` crashes ``kube play``: ``optional: false`` is added;
- a Secret is mounted as base64 text, not decoded (fixed in podman 4.4): the daemon takes a
  base64 PEM as a key, so this needs no change; its ``defaultMode`` is ignored (files are
  0644 root:root) and it is not owned by ``fsGroup``;
- ``fsGroup`` is ignored: a kubelet adds it to every container's groups (and owns the volumes
  by it); ``supplementalGroups`` is honoured, so the fsGroup is added there;
- an ``emptyDir`` becomes a volume owned by whichever container mounts it first, so the auth
  server found its token directory owned by the service's user in some runs (and refused it);
  ``medium: Memory`` and ``sizeLimit`` are ignored. Each emptyDir is replaced by a claim of a
  podman volume made beforehand as a kubelet makes the emptyDir: root, group fsGroup (or 0),
  mode 2777 (0777 without fsGroup), a tmpfs of ``sizeLimit`` for ``medium: Memory``;
- ``containerPort`` becomes a published host port (a way in from the host, which a pod without
  a network even refuses): ``ports`` are dropped (a pod's ports are informational for a kubelet);
- an annotation value over 63 characters is refused (Kubernetes allows 256 KiB): dropped;
- probes are not run: a livenessProbe becomes a healthcheck whose ``exec`` array is joined into
  one shell string (so it runs something else) and needs systemd timers; startup and readiness
  probes are ignored. They are dropped, and the tests run the rendered probe commands with
  ``podman exec`` instead;
- native sidecars (init containers with ``restartPolicy: Always``) are not supported (render
  with ``authserver_sidecar_native_sidecar: false``); ``secretKeyRef`` to a kube-played Secret
  fails; with ``readOnlyRootFilesystem`` podman mounts a writable tmpfs on /tmp, /var/tmp and /run
  (a kubelet does not).
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import yaml

from okera_auth.sandbox.podman import Adapted, for_podman, make_empty_dir, pod_names, remove_played, secret_names

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_ROOT = Path("/run/okera-auth-podman")
CNI_IPAM_STATE = Path("/var/lib/cni/networks")  # host-local's reservations, per network name
TUTORIAL_VARS = REPO_ROOT / "roles" / "authserver_sidecar" / "files" / "tutorial_service.yml"
# Figures measured by the tests (image build, size, pod start, memory), printed at the end of the run.
FIGURES: Dict[str, object] = {}

CONTAINERS_CONF = """\
# Written by tests/containers/podman_harness.py for the container tests only.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{run_root}/libpod"
[network]
network_config_dir = "{cache}/networks"
"""

STORAGE_CONF = """\
# Written by tests/containers/podman_harness.py for the container tests only.
[storage]
driver = "overlay"
graphroot = "{cache}/storage"
runroot = "{run_root}/storage"
"""

# No registry is reachable: never try one, and never ask which one a short name means.
REGISTRIES_CONF = """\
unqualified-search-registries = []
short-name-mode = "disabled"
"""


class PodmanError(AssertionError):
    """A podman command failed; the message has its arguments and output."""


class Podman:
    """podman with the private configuration under ``cache`` (``.cache/podman`` of the checkout)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "networks").mkdir(exist_ok=True)
        files = {"containers.conf": CONTAINERS_CONF, "storage.conf": STORAGE_CONF,
                 "registries.conf": REGISTRIES_CONF}
        for name, text in files.items():
            (cache / name).write_text(text.format(cache=cache, run_root=RUN_ROOT))
        self.env = dict(os.environ, CONTAINERS_CONF=str(cache / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(cache / "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=str(cache / "registries.conf"))

    def __call__(self, *args: str, check: bool = True, timeout: float = 120,
                 input_text: Optional[str] = None) -> subprocess.CompletedProcess:
        done = subprocess.run(["podman", *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, input=input_text, check=False)
        if check and done.returncode:
            raise PodmanError("podman %s: exit %d\n%s%s" % (" ".join(args), done.returncode, done.stdout, done.stderr))
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout or "null")

    def exec(self, container: str, *command: str, user: Optional[str] = None,
             input_text: Optional[str] = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``command`` in ``container`` (as its user unless ``user``); never raises on its exit code."""
        options = ["--user", user] if user else []
        if input_text is not None:
            options.append("--interactive")
        return self("exec", *options, container, *command, check=False, input_text=input_text, timeout=timeout)

    def python(self, container: str, code: str, *args: str, user: Optional[str] = None) -> subprocess.CompletedProcess:
        """Run Python code (read from stdin) in ``container`` with ``args`` as sys.argv[1:]."""
        return self.exec(container, "python", "-", *args, user=user, input_text=code)

    def logs(self, container: str) -> str:
        done = self("logs", container, check=False)
        return done.stdout + done.stderr

    def wait_for_log(self, container: str, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.logs(container)
            if re.search(pattern, text, re.M):
                return text
            if time.monotonic() > deadline:
                state = self("inspect", "--format", "{{.State.Status}} exit {{.State.ExitCode}}", container, check=False)
                raise PodmanError("%s did not log /%s/ within %g s (%s):\n%s"
                                  % (container, pattern, timeout, state.stdout.strip(), text))
            time.sleep(0.1)

    def leftovers(self) -> Dict[str, List[str]]:
        """What exists besides images: pods, containers, volumes, secrets, networks."""
        found = {
            "pods": self("pod", "ps", "--quiet").stdout.split(),
            "containers": self("ps", "--all", "--quiet").stdout.split(),
            "volumes": self("volume", "ls", "--quiet").stdout.split(),
            "secrets": [line.split()[0] for line in self("secret", "ls", "--noheading").stdout.splitlines() if line.strip()],
            "networks": [name for name in self("network", "ls", "--format", "{{.Name}}").stdout.split() if name != "podman"],
        }
        return {kind: names for kind, names in found.items() if names}

    def sweep(self) -> None:
        """Remove every pod, container, volume, secret and network of this private storage."""
        self("pod", "rm", "--all", "--force", "--time", "2", check=False, timeout=180)
        self("rm", "--all", "--force", "--time", "2", check=False, timeout=180)
        for secret in self.leftovers().get("secrets", []):
            self("secret", "rm", secret, check=False)
        self("volume", "prune", "--force", check=False)
        for network in self.leftovers().get("networks", []):
            self.remove_network(network)

    def remove_network(self, name: str) -> None:
        """Remove a network (and whatever still uses it) with CNI's address reservations for it."""
        self("network", "rm", "--force", name, check=False, timeout=180)
        shutil.rmtree(CNI_IPAM_STATE / name, ignore_errors=True)


def setting_up_failed(podman_command: Optional[str]) -> Optional[str]:
    """Why the container tests cannot run here, or None."""
    if podman_command is None:
        return "podman is not installed (apt-get install podman runc catatonit; scripts/test.sh does it)"
    if shutil.which("runc") is None:
        return "runc is not installed (apt-get install runc): crun refuses this machine's cgroups"
    if shutil.which("catatonit") is None:
        return "catatonit is not installed (apt-get install catatonit): podman's pods need it"
    if os.geteuid() != 0:
        return "the container tests run as root (the storage lives under %s)" % RUN_ROOT
    return None


# ---- manifests: what podman runs (okera_auth.sandbox.podman, shared with the sandbox's --podman) ----

@dataclass
class Played:
    """A `kube play` that ran: its pods, how long it took, the adapted manifests."""

    pods: List[str]
    started: float  # time.monotonic() when kube play began
    seconds: float  # how long kube play took
    adapted: Adapted
    path: Path


@dataclass
class Network:
    """A network the tests created: its name and its subnet."""

    name: str
    subnet: ipaddress.IPv4Network

    def address_of(self, podman: Podman, container: str) -> str:
        """The address ``container`` (for a pod: its infra container) has on this network."""
        (found,) = podman.json("inspect", "--type", "container", container)
        return found["NetworkSettings"]["Networks"][self.name]["IPAddress"]


@contextlib.contextmanager
def internal_network(podman: Podman, name: str) -> Iterator[Network]:
    """`podman network create --internal`: its containers reach each other and nothing else;
    on leaving, removed with whatever still uses it."""
    podman.remove_network(name)  # what an interrupted run may have left
    podman("network", "create", "--internal", name)
    try:
        (found,) = podman.json("network", "inspect", name)
        assert found["internal"] is True, found
        yield Network(name, ipaddress.IPv4Network(found["subnets"][0]["subnet"]))
    finally:
        podman.remove_network(name)


@contextlib.contextmanager
def kube_play(podman: Podman, documents: Sequence[Dict[str, Any]], workdir: Path, network: Network) -> Iterator[Played]:
    """`podman kube play --network <network>` of the manifests (adapted for podman); on leaving, also
    after a failure, the pods, their Secrets, the Secrets' volumes and the emptyDir volumes are removed."""
    adapted = for_podman(documents)
    path = workdir / "kube-play.yml"
    path.write_text(yaml.safe_dump_all(adapted.documents, sort_keys=False))
    pods, secrets = pod_names(adapted.documents), secret_names(adapted.documents)
    volumes = [empty_dir.name for empty_dir in adapted.empty_dirs]
    remove_played(pods, secrets, volumes, podman.env)  # what an interrupted run may have left with the same names
    started = time.monotonic()
    try:
        for empty_dir in adapted.empty_dirs:
            make_empty_dir(empty_dir, podman.env)
        podman("kube", "play", "--network", network.name, str(path), timeout=180)
        yield Played(pods, started, time.monotonic() - started, adapted, path)
    finally:
        podman("kube", "down", str(path), check=False, timeout=180)
        remove_played(pods, secrets, volumes, podman.env)


def container_of(pod: str, container: str) -> str:
    """The name podman gives a pod's container."""
    return "%s-%s" % (pod, container)


def ansible_playbook(workdir: Path, playbook: str, *args: str) -> subprocess.CompletedProcess:
    """ansible-playbook playbooks/<playbook> of this checkout (as the collection okera.auth) in ``workdir``."""
    collections = workdir / "collections"
    (collections / "ansible_collections" / "okera").mkdir(parents=True, exist_ok=True)
    link = collections / "ansible_collections" / "okera" / "auth"
    if not link.exists():
        link.symlink_to(REPO_ROOT)
    # The collections the tests installed (amazon.aws, ...) stay findable after this checkout's link.
    found = [str(collections)] + [path for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if path]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(found), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), str(REPO_ROOT / "playbooks" / playbook), *args],
                          capture_output=True, text=True, env=env, cwd=workdir, timeout=600, check=False)


def render_sidecar(workdir: Path, key: Path, image: str, *extra: str) -> List[Dict[str, Any]]:
    """playbooks/render_sidecar.yml with the tutorial's variables, the ported service
    (tutorial_client=myservice) and ``extra`` arguments; the rendered documents."""
    output = workdir / "rendered"
    done = ansible_playbook(workdir, "render_sidecar.yml",
                            "-e", "@%s" % TUTORIAL_VARS, "-e", "authserver_sidecar_private_key_file=%s" % key,
                            "-e", "authserver_sidecar_output_dir=%s" % output, "-e", "authserver_sidecar_image=%s" % image,
                            "-e", "authserver_sidecar_native_sidecar=false", "-e", "tutorial_client=myservice", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return [document for document in yaml.safe_load_all((output / "token-client.yml").read_text()) if document]
