"""The auth server as a sidecar in real pods: `podman kube play` of the role's rendered manifests
and of the tutorial's k8s.yaml, with the image scripts/build-image.sh builds offline.

The Okera cluster the example service asks is the sandbox's REST API, run inside each pod
(`okera-auth-sandbox serve`, from the same image, as an extra container joined to the pod):
its Service cdas-rest-server's load balancer is 127.0.0.1:8083, which is the pod's loopback there,
and it verifies the users' tokens with the cluster's JWT_PUBLIC_KEY, whose private half is the
auth server's key. The pods have no network (`--network none`): no traffic leaves them.

What podman does not do as a kubelet does is listed in podman_harness; the parts the role relies
on are tested here another way: the rendered probe commands are run with `podman exec`, and the
daemon is run with its volumes laid out as a kubelet lays them out (fsGroup, defaultMode,
the Secret's ..data symlinks).
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import jwt
import pytest
import yaml

from podman_harness import FIGURES, Played, Podman, container_of, kube_play, render_sidecar

TUTORIAL_K8S = Path(__file__).resolve().parent / "tutorial_k8s.yaml"
REST_PORT = 8083  # Okera's REST port; the sandbox's load balancer is 127.0.0.1 (the pod's loopback here)
SANDBOX_API_PORT = 6443
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


def _start_okera_cluster(podman: Podman, pod: str, image: str, sandbox_state: Path, workdir: Path) -> str:
    """The sandbox cluster's server in the pod (a copy of its state, owned by the image's user):
    its REST API on the pod's 127.0.0.1:8083, answering once its Okera pods are ready."""
    state = workdir / "okera-state"
    shutil.copytree(sandbox_state, state)
    for path in [state, *state.rglob("*")]:
        os.chown(path, DAEMON_UID, FS_GROUP)
    name = container_of(pod, "okera")
    podman("run", "--detach", "--pod", pod, "--name", name, "--user", "%d:%d" % (DAEMON_UID, FS_GROUP),
           "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
           "--volume", "%s:/state" % state, "--entrypoint", "okera-auth-sandbox", image,
           "serve", "--state-dir", "/state", "--rest-port", str(REST_PORT), "--port", str(SANDBOX_API_PORT),
           "--pod-start-delay", "0.1")
    deadline = time.monotonic() + 30
    while True:
        status, body = _fetch(podman, name, "http://127.0.0.1:%d/api/info" % REST_PORT)
        if status == 200:
            return name
        assert time.monotonic() < deadline, "the sandbox's REST API did not answer: %d %s\n%s" % (status, body, podman.logs(name))
        time.sleep(0.2)


@dataclass
class RunningPod:
    manifests: List[Dict[str, Any]]  # as rendered (before the changes for podman)
    played: Played
    pod: str
    daemon: str
    service: str
    okera: str
    public_key: bytes


def _wait_until_ready(podman: Podman, played: Played, daemon: str, what: str) -> None:
    podman.wait_for_log(daemon, READY)
    FIGURES["pod start, %s (kube play to daemon ready)" % what] = "%.1f s (kube play itself %.1f s)" % (
        time.monotonic() - played.started, played.seconds)


@pytest.fixture(scope="module")
def role_pod(podman, image, sandbox_state, tmp_path_factory) -> Iterator[RunningPod]:
    """The role's rendered pod (the tutorial's variables, the ported service) under kube play."""
    workdir = tmp_path_factory.mktemp("role-pod")
    manifests = render_sidecar(workdir, sandbox_state / "signing-key.pem", image,
                               "-e", "tutorial_okera_rest_url=http://127.0.0.1:%d" % REST_PORT)
    with kube_play(podman, manifests, workdir) as played:
        (pod,) = played.pods
        daemon, service = container_of(pod, "authserver"), container_of(pod, "myservice")
        _wait_until_ready(podman, played, daemon, "the role's")
        okera = _start_okera_cluster(podman, pod, image, sandbox_state, workdir)
        yield RunningPod(manifests, played, pod, daemon, service, okera, (sandbox_state / "public-key.pem").read_bytes())


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


def test_nothing_in_the_pod_runs_as_root_or_with_capabilities(podman, role_pod):
    for container, uid, gid in ((role_pod.daemon, DAEMON_UID, FS_GROUP), (role_pod.service, SERVICE_UID, SERVICE_GID),
                                (role_pod.okera, DAEMON_UID, FS_GROUP)):
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

@pytest.fixture(scope="module")
def tutorial_pod(podman, image, sandbox_state, tmp_path_factory) -> Iterator[RunningPod]:
    """The tutorial's k8s.yaml as it is, with the Secret `authentication` made beside it."""
    workdir = tmp_path_factory.mktemp("tutorial-pod")
    manifests = [document for document in yaml.safe_load_all(TUTORIAL_K8S.read_text()) if document]
    for document in manifests:
        for container in document["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == image
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "authentication"}, "type": "Opaque",
              "data": {"JWT_PRIVATE_KEY": base64.b64encode((sandbox_state / "signing-key.pem").read_bytes()).decode()}}
    with kube_play(podman, [secret] + manifests, workdir) as played:
        (pod,) = played.pods
        daemon, service = container_of(pod, "authserver"), container_of(pod, "myservice")
        _wait_until_ready(podman, played, daemon, "the tutorial's")
        okera = _start_okera_cluster(podman, pod, image, sandbox_state, workdir)
        yield RunningPod(manifests, played, pod, daemon, service, okera, (sandbox_state / "public-key.pem").read_bytes())


def test_tutorial_manifest_runs_with_only_podmans_own_changes(tutorial_pod):
    assert tutorial_pod.played.pods == ["myservice-pod-0"]
    assert tutorial_pod.played.adapted.changes == [
        "Deployment/myservice: volume secrets: secret.optional: false",
        "Deployment/myservice: volume tokens: emptyDir made as podman volume myservice-tokens"]


def test_tutorial_daemon_reads_the_tutorials_variables(podman, tutorial_pod):
    log = podman.logs(tutorial_pod.daemon)
    assert "Listening on - writing to '/usr/share/myservice/tokens'" in log
    assert "127.0.0.1:5002" in log


def test_tutorial_rest_url_is_the_load_balancer_of_cdas_rest_server(podman, tutorial_pod):
    """The cluster's REST API is where Service cdas-rest-server's load balancer says."""
    read_service = r"""
import json, sys, urllib.request
token = open("/state/admin.token").read().strip()
request = urllib.request.Request("http://127.0.0.1:%s/api/v1/namespaces/default/services/cdas-rest-server" % sys.argv[1],
                                 headers={"Authorization": "Bearer " + token})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(opener.open(request, timeout=10).read().decode())
"""
    done = podman.python(tutorial_pod.okera, read_service, str(SANDBOX_API_PORT))
    assert done.returncode == 0, done.stderr
    service = json.loads(done.stdout)
    address = "http://%s:%d" % (service["status"]["loadBalancer"]["ingress"][0]["ip"], service["spec"]["ports"][0]["port"])
    env = {entry["name"]: entry["value"] for entry in
           tutorial_pod.manifests[0]["spec"]["template"]["spec"]["containers"][1]["env"]}
    assert env["OKERA_REST_URL"] == address == "http://127.0.0.1:%d" % REST_PORT


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
