"""The auth server as a sidecar in real pods: `podman kube play` of the role's rendered manifests
and of the tutorial's k8s.yaml, with the image scripts/build-image.sh builds offline.

The Okera cluster the example service asks is the sandbox (`okera-auth-sandbox serve`, from the
same image) in a container of its own on a network the tests create with `podman network create
--internal`, on which the pods are played too: its Service cdas-rest-server's load balancer is
the sandbox container's address there (`--load-balancer-ip`), port 8083, where its REST API
answers; it verifies the users' tokens with the cluster's JWT_PUBLIC_KEY, whose private half is
the auth server's key. The services read the REST API's URL from that Service, as the tutorial
has it done. The network has no gateway: no traffic leaves it, not even to the host.

What podman does not do as a kubelet does is listed in podman_harness; the parts the role relies
on are tested here another way: the rendered probe commands are run with `podman exec`, and the
daemon is run with its volumes laid out as a kubelet lays them out (fsGroup, defaultMode,
the Secret's ..data symlinks).
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import jwt
import pytest
import yaml

from podman_harness import FIGURES, Network, Played, Podman, container_of, internal_network, kube_play, render_sidecar

TUTORIAL_K8S = Path(__file__).resolve().parent / "tutorial_k8s.yaml"
NETWORK = "okera-auth-tests"
OKERA_CONTAINER = "okera-sandbox"
REST_PORT = 8083  # Okera's REST port, on the sandbox container's address on the network
SANDBOX_API_PORT = 6443  # the sandbox's Kubernetes API, on its container's loopback
DAEMON_UID, FS_GROUP, SERVICE_UID, SERVICE_GID = 65532, 2000, 1000, 1000  # the role's defaults
READY = r'"event": ?"ready"|Signing with RSA'

# `curl http://test:test@localhost:5010` for images without curl: the user and password of the
# URL go into a Basic Authorization header, as curl sends them. Prints the status, then the body
# (status 0 and the reason when nothing answered).
FETCH = r"""
import base64, sys, urllib.error, urllib.parse, urllib.request
url = urllib.parse.urlsplit(sys.argv[1])
headers = {}
if url.username is not None:
    credentials = "%s:%s" % (urllib.parse.unquote(url.username), urllib.parse.unquote(url.password or ""))
    headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
netloc = url.hostname + (":%d" % url.port if url.port else "")
request = urllib.request.Request(urllib.parse.urlunsplit((url.scheme, netloc, url.path or "/", url.query, "")),
                                 headers=headers)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(request, timeout=20) as answer:
        status, body = answer.status, answer.read()
except urllib.error.HTTPError as error:
    status, body = error.code, error.read()
except (urllib.error.URLError, OSError) as error:
    status, body = 0, str(error).encode()
print(status)
sys.stdout.write(body.decode())
"""

# What the processes of a container are: user, groups, capabilities, no_new_privs, seccomp.
PROCESSES = r"""
import json, os
found = []
for pid in sorted(os.listdir("/proc")):
    if pid.isdigit() and int(pid) != os.getpid():
        try:
            status = dict(line.split(":\t", 1) for line in open("/proc/%s/status" % pid).read().splitlines() if ":\t" in line)
            command = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        found.append({"pid": int(pid), "command": command, "uids": status["Uid"].split(), "gids": status["Gid"].split(),
                      "groups": status["Groups"].split(), "cap_eff": status["CapEff"], "cap_bnd": status["CapBnd"],
                      "no_new_privs": status["NoNewPrivs"], "seccomp": status["Seccomp"], "rss_kib": status.get("VmRSS", "0 kB").split()[0]})
print(json.dumps(found))
"""

WRITE_PROBE = r"""
import errno, json, os, sys
answers = {}
for path in sys.argv[1:]:
    try:
        os.close(os.open(os.path.join(path, ".write-probe"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(os.path.join(path, ".write-probe"))
        answers[path] = "written"
    except OSError as error:
        answers[path] = errno.errorcode.get(error.errno, str(error.errno))
print(json.dumps(answers))
"""

STAT = r"""
import json, os, sys
answers = {}
for path in sys.argv[1:]:
    try:
        info = os.stat(path)
        answers[path] = {"uid": info.st_uid, "gid": info.st_gid, "mode": "%04o" % (info.st_mode & 0o7777)}
    except OSError as error:
        answers[path] = {"error": error.strerror}
print(json.dumps(answers))
"""

# Service cdas-rest-server as the sandbox's API server has it (run in the sandbox's container).
READ_SERVICE = r"""
import sys, urllib.request
token = open("/state/admin.token").read().strip()
request = urllib.request.Request("http://127.0.0.1:%s/api/v1/namespaces/default/services/cdas-rest-server" % sys.argv[1],
                                 headers={"Authorization": "Bearer " + token})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(opener.open(request, timeout=10).read().decode())
"""

# Where a TCP connection to each address (port argv[1]) gets, and the destinations of the routes.
CONNECT = r"""
import errno, json, socket, sys
answers = {}
for address in sys.argv[2:]:
    with socket.socket() as probe:
        probe.settimeout(5)
        try:
            probe.connect((address, int(sys.argv[1])))
            answers[address] = "connected"
        except OSError as error:
            answers[address] = errno.errorcode.get(error.errno, str(error))
routes = [line.split()[1] for line in open("/proc/net/route").read().splitlines()[1:] if line.strip()]
print(json.dumps({"connect": answers, "routes": [socket.inet_ntoa(bytes.fromhex(route)[::-1]) for route in routes]}))
"""

READ = r"""
import sys
try:
    sys.stdout.write(open(sys.argv[1]).read())
except OSError as error:
    print("ERROR %s" % error.strerror)
"""


def _fetch(podman: Podman, container: str, url: str, user: str = None):
    done = podman.python(container, FETCH, url, user=user)
    assert done.returncode == 0, done.stdout + done.stderr
    status, _newline, body = done.stdout.partition("\n")
    return int(status), body


def _json(podman: Podman, container: str, code: str, *args: str, user: str = None) -> Any:
    done = podman.python(container, code, *args, user=user)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _load_balancer_url(podman: Podman, okera: str) -> Optional[str]:
    """http://<ingress>:<port> of Service cdas-rest-server, once its load balancer has an address."""
    done = podman.python(okera, READ_SERVICE, str(SANDBOX_API_PORT))
    if done.returncode:
        return None  # the API server does not listen yet
    service = json.loads(done.stdout)
    ingress = (service.get("status") or {}).get("loadBalancer", {}).get("ingress")
    return "http://%s:%d" % (ingress[0]["ip"], service["spec"]["ports"][0]["port"]) if ingress else None


@dataclass
class OkeraCluster:
    container: str  # the sandbox's
    network: Network
    address: str  # the sandbox container's on the network: its load balancer's
    rest_url: str  # read from Service cdas-rest-server


@pytest.fixture(scope="module")
def okera(podman, image, sandbox_state, tmp_path_factory) -> Iterator[OkeraCluster]:
    """The sandbox cluster's server in its own container (a copy of its state, owned by the image's
    user) on the internal network, its load balancer at the container's address there, shared by
    the pods: answering once its Okera pods are ready."""
    state = tmp_path_factory.mktemp("okera") / "okera-state"
    shutil.copytree(sandbox_state, state)
    for path in [state, *state.rglob("*")]:
        os.chown(path, DAEMON_UID, FS_GROUP)
    with internal_network(podman, NETWORK) as network:
        address = str(network.subnet[-2])  # away from the addresses podman hands out from the start
        podman("run", "--detach", "--name", OKERA_CONTAINER, "--network", network.name, "--ip", address,
               "--user", "%d:%d" % (DAEMON_UID, FS_GROUP), "--read-only", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges", "--volume", "%s:/state" % state,
               "--entrypoint", "okera-auth-sandbox", image, "serve", "--state-dir", "/state",
               "--rest-port", str(REST_PORT), "--port", str(SANDBOX_API_PORT), "--load-balancer-ip", address,
               "--pod-start-delay", "0.1", "--verbose")
        try:
            deadline = time.monotonic() + 30
            while True:
                rest_url = _load_balancer_url(podman, OKERA_CONTAINER)
                status, body = _fetch(podman, OKERA_CONTAINER, rest_url + "/api/info") if rest_url else (0, "")
                if status == 200:
                    break
                assert time.monotonic() < deadline, "the sandbox's REST API did not answer at %s: %d %s\n%s" % (
                    rest_url, status, body, podman.logs(OKERA_CONTAINER))
                time.sleep(0.2)
            yield OkeraCluster(OKERA_CONTAINER, network, address, rest_url)
        finally:
            podman("rm", "--force", "--time", "2", OKERA_CONTAINER, check=False)


@dataclass
class RunningPod:
    manifests: List[Dict[str, Any]]  # as rendered (before the changes for podman)
    played: Played
    pod: str
    daemon: str
    service: str
    public_key: bytes


def _wait_until_ready(podman: Podman, played: Played, daemon: str, what: str) -> None:
    podman.wait_for_log(daemon, READY)
    FIGURES["pod start, %s (kube play to daemon ready)" % what] = "%.1f s (kube play itself %.1f s)" % (
        time.monotonic() - played.started, played.seconds)


@pytest.fixture(scope="module")
def role_pod(podman, image, sandbox_state, okera, tmp_path_factory) -> Iterator[RunningPod]:
    """The role's rendered pod (the tutorial's variables, the ported service) under kube play."""
    workdir = tmp_path_factory.mktemp("role-pod")
    manifests = render_sidecar(workdir, sandbox_state / "signing-key.pem", image,
                               "-e", "tutorial_okera_rest_url=%s" % okera.rest_url)
    with kube_play(podman, manifests, workdir, okera.network) as played:
        (pod,) = played.pods
        daemon, service = container_of(pod, "authserver"), container_of(pod, "myservice")
        _wait_until_ready(podman, played, daemon, "the role's")
        yield RunningPod(manifests, played, pod, daemon, service, (sandbox_state / "public-key.pem").read_bytes())


def _pod_spec(manifests: List[Dict[str, Any]]) -> Dict[str, Any]:
    (pod,) = [document for document in manifests if document["kind"] == "Pod"]
    return pod["spec"]


def _container_spec(manifests: List[Dict[str, Any]], name: str) -> Dict[str, Any]:
    (container,) = [container for container in _pod_spec(manifests)["containers"] if container["name"] == name]
    return container


# ---- the role's pod ----------------------------------------------------------------------------

def test_what_podman_needed_changed_is_only_what_it_cannot_do(role_pod):
    changes = role_pod.played.adapted.changes
    assert "Secret/token-client-authserver-key" not in " ".join(changes)
    assert sorted(changes) == sorted([
        "Pod/token-client: annotation okera.auth/private-key-sha256 dropped (value over 63 characters)",
        "Pod/token-client: volume authserver-key: secret.optional: false",
        "Pod/token-client: fsGroup 2000 added to supplementalGroups",
        "Pod/token-client: volume tokens: emptyDir made as podman volume token-client-tokens",
        "Pod/token-client: container authserver: startupProbe dropped",
        "Pod/token-client: container authserver: readinessProbe dropped",
        "Pod/token-client: container authserver: livenessProbe dropped",
        "Pod/token-client: container myservice: ports dropped",
    ])


def test_daemon_serves_the_service_over_the_pods_loopback(podman, role_pod):
    env = {entry["name"]: entry["value"] for entry in _container_spec(role_pod.manifests, "myservice")["env"]}
    assert env["OKERA_AUTHSERVER_URL"] == "http://127.0.0.1:5001"
    status, path = _fetch(podman, role_pod.service, env["OKERA_AUTHSERVER_URL"] + "/analyst")
    assert status == 200, path
    assert re.fullmatch(r"/tmp/tokens/analyst\.\d+\.token", path)
    token = podman.python(role_pod.service, READ, path).stdout
    claims = jwt.decode(token, role_pod.public_key, algorithms=["RS512"])
    assert claims["sub"] == "analyst"


def test_token_files_have_the_daemons_owner_the_fs_group_and_mode_0640(podman, role_pod):
    status, path = _fetch(podman, role_pod.service, "http://127.0.0.1:5001/owner-check")
    assert status == 200, path
    seen = _json(podman, role_pod.service, STAT, path, "/tmp/tokens")
    assert seen[path] == {"uid": DAEMON_UID, "gid": FS_GROUP, "mode": "0640"}
    # The emptyDir as a kubelet makes it with fsGroup (podman_harness.make_empty_dir).
    assert seen["/tmp/tokens"] == {"uid": 0, "gid": FS_GROUP, "mode": "2777"}


def test_token_volume_is_a_tmpfs_of_its_size_limit(podman, role_pod):
    volume = next(volume for volume in _pod_spec(role_pod.manifests)["volumes"] if volume["name"] == "tokens")
    assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Mi"}
    mounts = podman.exec(role_pod.daemon, "cat", "/proc/self/mounts").stdout
    (line,) = [line for line in mounts.splitlines() if line.split()[1] == "/tmp/tokens"]
    assert line.split()[2] == "tmpfs" and "size=16384k" in line, line


def test_service_reads_tokens_only_through_the_fs_group(podman, role_pod):
    """The service's user reads a 0640 token because the pod's fsGroup is one of its groups
    (here through supplementalGroups, as podman ignores fsGroup); without that group it cannot."""
    status, path = _fetch(podman, role_pod.service, "http://127.0.0.1:5001/group-check")
    assert status == 200, path
    assert podman.python(role_pod.service, READ, path).stdout.count(".") == 2  # a JWS
    assert podman.python(role_pod.service, READ, path, user="%d:%d" % (SERVICE_UID, SERVICE_GID)).stdout.strip() == "ERROR Permission denied"


def test_key_is_mounted_only_into_the_daemon(podman, role_pod):
    key_dir = "/etc/okera-authserver"
    in_daemon = _json(podman, role_pod.daemon, STAT, key_dir, key_dir + "/private.pem")
    assert "error" not in in_daemon[key_dir + "/private.pem"]
    in_service = _json(podman, role_pod.service, STAT, key_dir, key_dir + "/private.pem")
    assert in_service == {key_dir: {"error": "No such file or directory"},
                          key_dir + "/private.pem": {"error": "No such file or directory"}}
    mounts = podman.exec(role_pod.service, "cat", "/proc/self/mountinfo").stdout
    assert "authserver-key" not in mounts and key_dir not in mounts
    # Nor is it in the shared token volume.
    listing = podman.exec(role_pod.service, "ls", "-A", "/tmp/tokens").stdout.split()
    assert all(name.endswith(".token") for name in listing), listing


def test_root_file_systems_and_the_services_token_mount_are_read_only(podman, role_pod):
    paths = ["/", "/etc", "/opt/okera-authserver", "/usr/local/bin"]
    assert _json(podman, role_pod.daemon, WRITE_PROBE, *paths, "/etc/okera-authserver", "/tmp/tokens") == dict(
        {path: "EROFS" for path in paths}, **{"/etc/okera-authserver": "EROFS", "/tmp/tokens": "written"})
    assert _json(podman, role_pod.service, WRITE_PROBE, *paths, "/tmp/tokens") == dict(
        {path: "EROFS" for path in paths}, **{"/tmp/tokens": "EROFS"})


def test_nothing_in_the_pod_or_the_sandbox_runs_as_root_or_with_capabilities(podman, role_pod, okera):
    for container, uid, gid in ((role_pod.daemon, DAEMON_UID, FS_GROUP), (role_pod.service, SERVICE_UID, SERVICE_GID),
                                (okera.container, DAEMON_UID, FS_GROUP)):
        processes = _json(podman, container, PROCESSES)
        assert processes, container
        for process in processes:
            assert process["uids"] == [str(uid)] * 4, (container, process)
            assert process["gids"] == [str(gid)] * 4, (container, process)
            assert "0" not in process["groups"], (container, process)
            assert process["cap_eff"] == process["cap_bnd"] == "0000000000000000", (container, process)
            assert process["no_new_privs"] == "1" and process["seccomp"] == "2", (container, process)
    (daemon,) = _json(podman, role_pod.daemon, PROCESSES)
    assert daemon["command"].endswith("okera-authserver")
    (service,) = _json(podman, role_pod.service, PROCESSES)
    assert str(FS_GROUP) in service["groups"]  # the pod's fsGroup (supplementalGroups under podman)


def test_resources_and_security_context_reach_the_runtime(podman, role_pod):
    (daemon,) = podman.json("inspect", role_pod.daemon)
    spec = _container_spec(role_pod.manifests, "authserver")
    assert spec["resources"]["limits"] == {"cpu": "500m", "memory": "128Mi"}
    assert daemon["HostConfig"]["Memory"] == 128 * 1024 * 1024
    assert daemon["HostConfig"]["CpuQuota"] * 1000 // daemon["HostConfig"]["CpuPeriod"] == 500
    assert daemon["HostConfig"]["ReadonlyRootfs"] is True
    assert "no-new-privileges" in daemon["HostConfig"]["SecurityOpt"]
    assert len(daemon["HostConfig"]["CapDrop"]) >= 14 and not daemon["HostConfig"]["CapAdd"]
    assert daemon["Config"]["User"] == "%d:%d" % (DAEMON_UID, FS_GROUP)


def test_rendered_probe_commands_pass_in_the_daemon_container(podman, role_pod):
    """podman runs none of the probes: each rendered probe's command, run as a kubelet runs it."""
    spec = _container_spec(role_pod.manifests, "authserver")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = spec[probe]["exec"]["command"]
        done = podman.exec(role_pod.daemon, *command, timeout=spec[probe]["timeoutSeconds"] + 10)
        assert done.returncode == 0, (probe, done.stdout, done.stderr)


def test_myservice_lists_the_users_databases_from_the_okera_rest_api(podman, role_pod):
    status, body = _fetch(podman, role_pod.service, "http://test:test@localhost:5010")
    assert status == 200, body
    assert json.loads(body) == ["default", "okera_sample"]
    assert re.search(r'"Generated token: /tmp/tokens/test\.\d+\.token"', podman.logs(role_pod.daemon))


def test_daemon_memory_stays_under_its_request(podman, role_pod):
    for user in ("mem-a", "mem-b", "mem-c"):
        assert _fetch(podman, role_pod.service, "http://127.0.0.1:5001/" + user)[0] == 200
    (daemon,) = _json(podman, role_pod.daemon, PROCESSES)
    rss_mib = int(daemon["rss_kib"]) / 1024
    FIGURES["daemon RSS in the container (after a few tokens)"] = "%.1f MiB" % rss_mib
    request = _container_spec(role_pod.manifests, "authserver")["resources"]["requests"]["memory"]
    assert request == "64Mi" and rss_mib < 64


# ---- the daemon as a kubelet mounts its volumes ------------------------------------------------

def _kubelet_secret_volume(directory: Path, name: str, content: bytes, group: int, mode: int) -> None:
    """A Secret volume as a kubelet writes it (AtomicWriter): the data in a timestamped
    directory, ..data pointing at it, and each key a symlink through ..data; with fsGroup every
    file is group fsGroup and the mode gets group read (defaultMode 0400 -> 0440)."""
    stamp = directory / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir(parents=True)
    (stamp / name).write_bytes(content)
    os.chown(stamp / name, 0, group)
    os.chmod(stamp / name, mode | 0o040)
    os.chown(stamp, 0, group)
    os.chmod(stamp, 0o750)
    (directory / "..data").symlink_to(stamp.name)
    (directory / name).symlink_to("..data/" + name)
    os.chown(directory, 0, group)
    os.chmod(directory, 0o3777)


def test_daemon_reads_its_key_and_writes_tokens_as_a_kubelet_lays_out_the_volumes(podman, image, role_pod, sandbox_state, tmp_path):
    """What podman does differently from a kubelet (the Secret decoded and linked through ..data,
    defaultMode 0400 made 0440 group fsGroup, the emptyDir root:fsGroup 2777): the rendered
    daemon container, run with its volumes laid out that way, starts and serves."""
    spec = _container_spec(role_pod.manifests, "authserver")
    (secret,) = [document for document in role_pod.manifests if document["kind"] == "Secret"]
    volume = next(volume for volume in _pod_spec(role_pod.manifests)["volumes"] if "secret" in volume)
    keys, tokens = tmp_path / "key", tmp_path / "tokens"
    _kubelet_secret_volume(keys, "private.pem", base64.b64decode(secret["data"]["private.pem"]),
                           FS_GROUP, volume["secret"]["defaultMode"])
    tokens.mkdir()
    os.chown(tokens, 0, FS_GROUP)
    os.chmod(tokens, 0o2777)
    mounts = {mount["name"]: mount["mountPath"] for mount in spec["volumeMounts"]}
    name = "kubelet-layout-authserver"
    podman("rm", "--force", name, check=False)
    arguments = ["run", "--detach", "--name", name, "--network", "none", "--read-only", "--cap-drop", "ALL",
                 "--security-opt", "no-new-privileges", "--user", "%d:%d" % (DAEMON_UID, FS_GROUP),
                 "--group-add", str(FS_GROUP), "--volume", "%s:%s:ro" % (keys, mounts["authserver-key"]),
                 "--volume", "%s:%s" % (tokens, mounts["tokens"])]
    for entry in spec["env"]:
        arguments += ["--env", "%s=%s" % (entry["name"], entry["value"])]
    try:
        podman(*arguments, image)
        podman.wait_for_log(name, READY)
        assert podman.exec(name, *spec["readinessProbe"]["exec"]["command"]).returncode == 0
        status, path = _fetch(podman, name, "http://127.0.0.1:5001/kubelet")
        assert status == 200, path
        token_file = tokens / Path(path).name
        info = token_file.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (DAEMON_UID, FS_GROUP, 0o640)
        assert jwt.decode(token_file.read_text(), role_pod.public_key, algorithms=["RS512"])["sub"] == "kubelet"
    finally:
        podman("rm", "--force", "--time", "2", name, check=False)


# ---- Okera's tutorial k8s.yaml, unchanged ------------------------------------------------------

def _service_env(manifests: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The tutorial's myservice container's env entries, by name."""
    (service,) = [container for container in manifests[0]["spec"]["template"]["spec"]["containers"]
                  if container["name"] == "myservice"]
    return {entry["name"]: entry for entry in service["env"]}


@pytest.fixture(scope="module")
def tutorial_pod(podman, image, sandbox_state, okera, tmp_path_factory) -> Iterator[RunningPod]:
    """The tutorial's k8s.yaml, with the Secret `authentication` made beside it and OKERA_REST_URL
    set to the load balancer of Service cdas-rest-server, as the tutorial has it done."""
    workdir = tmp_path_factory.mktemp("tutorial-pod")
    manifests = [document for document in yaml.safe_load_all(TUTORIAL_K8S.read_text()) if document]
    for document in manifests:
        for container in document["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == image
    _service_env(manifests)["OKERA_REST_URL"]["value"] = okera.rest_url
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "authentication"}, "type": "Opaque",
              "data": {"JWT_PRIVATE_KEY": base64.b64encode((sandbox_state / "signing-key.pem").read_bytes()).decode()}}
    with kube_play(podman, [secret] + manifests, workdir, okera.network) as played:
        (pod,) = played.pods
        daemon, service = container_of(pod, "authserver"), container_of(pod, "myservice")
        _wait_until_ready(podman, played, daemon, "the tutorial's")
        yield RunningPod(manifests, played, pod, daemon, service, (sandbox_state / "public-key.pem").read_bytes())


def test_tutorial_manifest_runs_with_only_podmans_own_changes(tutorial_pod):
    assert tutorial_pod.played.pods == ["myservice-pod-0"]
    assert tutorial_pod.played.adapted.changes == [
        "Deployment/myservice: volume secrets: secret.optional: false",
        "Deployment/myservice: volume tokens: emptyDir made as podman volume myservice-tokens"]


def test_tutorial_daemon_reads_the_tutorials_variables(podman, tutorial_pod):
    log = podman.logs(tutorial_pod.daemon)
    assert "Listening on - writing to '/usr/share/myservice/tokens'" in log
    assert "127.0.0.1:5002" in log


def test_tutorial_rest_url_is_the_load_balancer_of_cdas_rest_server(podman, tutorial_pod, okera):
    """The cluster's REST API is where Service cdas-rest-server's load balancer says: the sandbox
    container's address on the internal network, not a loopback address."""
    address = _load_balancer_url(podman, okera.container)
    assert _service_env(tutorial_pod.manifests)["OKERA_REST_URL"]["value"] == address == "http://%s:%d" % (
        okera.address, REST_PORT)
    assert ipaddress.IPv4Address(okera.address) in okera.network.subnet
    assert not ipaddress.IPv4Address(okera.address).is_loopback


def test_tutorial_test_step_answers_the_databases(podman, tutorial_pod):
    """The tutorial's last step: exec into the service container, curl http://test:test@localhost:5010."""
    status, body = _fetch(podman, tutorial_pod.service, "http://test:test@localhost:5010")
    assert status == 200, body + podman.logs(tutorial_pod.service)
    assert json.loads(body) == ["default", "okera_sample"]
    log = podman.logs(tutorial_pod.daemon)
    assert re.search(r"Generated token: /usr/share/myservice/tokens/test\.\d+\.token", log), log


def test_tutorial_tokens_are_group_okera_mode_0640(podman, tutorial_pod):
    status, path = _fetch(podman, tutorial_pod.service, "http://127.0.0.1:5002/janedoe")
    assert status == 200, path
    assert _json(podman, tutorial_pod.service, STAT, path)[path] == {"uid": DAEMON_UID, "gid": FS_GROUP, "mode": "0640"}
    assert jwt.decode(podman.python(tutorial_pod.service, READ, path).stdout, tutorial_pod.public_key,
                      algorithms=["RS512"])["sub"] == "janedoe"


def _host_addresses() -> List[str]:
    """This host's IPv4 addresses but loopback ones (the addresses of its other networks too)."""
    done = subprocess.run(["ip", "-4", "-o", "address", "show"], capture_output=True, text=True, check=True, timeout=10)
    addresses = [line.split()[3].split("/")[0] for line in done.stdout.splitlines()]
    return [address for address in addresses if not ipaddress.IPv4Address(address).is_loopback]


def test_pods_reach_the_okera_cluster_over_the_internal_network_and_nothing_else(podman, tutorial_pod, okera):
    """The test step's databases came from the sandbox's container, to the pod's address on the
    internal network; from the pod, only that network answers: no route leads out of it, the
    host's addresses included, and the pod's own loopback has no REST API."""
    (network,) = podman.json("network", "inspect", okera.network.name)
    assert network["internal"] is True and network["driver"] == "bridge"
    pod_address = okera.network.address_of(podman, podman.json("pod", "inspect", tutorial_pod.pod)["InfraContainerID"])
    assert ipaddress.IPv4Address(pod_address) in okera.network.subnet and pod_address != okera.address
    status, body = _fetch(podman, tutorial_pod.service, "http://test:test@localhost:5010")
    assert status == 200 and json.loads(body) == ["default", "okera_sample"], body
    answered = re.findall(r'rest: (\S+) "GET /api/databases HTTP/1.1" 200', podman.logs(okera.container))
    assert pod_address in answered, answered
    assert all(ipaddress.IPv4Address(client) in okera.network.subnet for client in answered), answered
    outside = ["203.0.113.1"] + _host_addresses()  # TEST-NET-3, as an address on the internet
    seen = _json(podman, tutorial_pod.service, CONNECT, str(REST_PORT), okera.address, "127.0.0.1", *outside)
    assert seen["connect"] == dict({okera.address: "connected", "127.0.0.1": "ECONNREFUSED"},
                                   **{address: "ENETUNREACH" for address in outside})
    assert seen["routes"] == [str(okera.network.subnet.network_address)]  # no default route
