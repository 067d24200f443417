"""rotate_system_token.yml wall time for 1 and N sandbox clusters in one run (one host each).

Prints the seconds of a forced rotation of one cluster, of N clusters with --forks N, and their
ratio (1.0 would be perfect parallelism), beside the floor of the same Ansible on this machine
(a playbook of as many no-op tasks as the rotation runs) and the tutorial's manual procedure on
the same cluster (a token minted in-process, then `kubectl patch` of the Secret, `kubectl
delete pods --all` and a wait until every pod is ready again), then issue 13's goals: one cluster
at most 3x the manual procedure, N clusters at most 2x one. It also prints the CPU seconds of both
runs (every process they start; not the sandboxes'), what the N clusters' CPU seconds mean on this
machine's cores, and how long ansible-playbook takes to start. Needs kubectl. Not part of the test run.

    python benchmarks/bench_rotation.py [--clusters 8] [--rounds 2]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from okera_auth.module_utils.keys import load_private_key_file
from okera_auth.module_utils.tokens import Signer, TokenSpec, decode_unverified, mint

REPO_ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO_ROOT / "playbooks" / "rotate_system_token.yml"


def _environment(collections: Path) -> dict:
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1")


def _sandbox(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "okera_auth.sandbox", *args], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit("okera-auth-sandbox %s failed: %s" % (" ".join(args), done.stderr.strip()))
    return done.stdout


def start_sandbox(state_dir: Path) -> Path:
    """A running sandbox cluster with a 30-day system token, once all its pods are ready."""
    _sandbox("init", "--state-dir", str(state_dir), "--token-ttl", "30d")
    _sandbox("start", "--state-dir", str(state_dir), "--port", "0", "--pod-start-delay", "0.2")
    _wait_until_ready(state_dir)
    return state_dir


def _wait_until_ready(state_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        report = json.loads(_sandbox("status", "--state-dir", str(state_dir), "--json"))
        if report["pods_total"] and report["pods_ready"] == report["pods_total"]:
            return
        if time.monotonic() > deadline:
            raise SystemExit("the pods of the sandbox %s were not ready within %g s" % (state_dir, timeout))
        time.sleep(0.2)


def manual_rotation(state_dir: Path) -> float:
    """Seconds of the tutorial's procedure: mint, kubectl patch the Secret, delete the pods, wait."""
    kubectl = ["kubectl", "--kubeconfig", str(state_dir / "kubeconfig")]
    # What the operator writes into the new token (issuer, the catalog admins' groups) is known
    # beforehand: taken from the current token, outside the timing.
    secret = json.loads(subprocess.run(kubectl + ["get", "secret", "secrets", "-o", "json"], capture_output=True,
                                       text=True, check=True).stdout)
    claims = decode_unverified(base64.b64decode(secret["data"]["SYSTEM_TOKEN_0"]).decode()).claims
    started = time.monotonic()
    signer = Signer(load_private_key_file(str(state_dir / "signing-key.pem")))
    token = mint(signer, TokenSpec(subject="okera_system_user", issuer=claims.get("iss"), groups=claims.get("groups"),
                                   ttl=30 * 86400)).token
    patch = {"data": {"SYSTEM_TOKEN_0": base64.b64encode(token.encode()).decode()}}
    for command in (["patch", "secret", "secrets", "-p", json.dumps(patch)], ["delete", "pods", "--all"]):
        done = subprocess.run(kubectl + command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit("kubectl %s failed: %s" % (command[0], done.stderr.strip()))
    _wait_until_ready(state_dir)
    return time.monotonic() - started


def _inventory(path: Path, sandboxes, backups: Path) -> Path:
    hosts = {"cluster%d" % number: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                    "system_token_kubeconfig": str(state_dir / "kubeconfig"),
                                    "system_token_private_key_path": str(state_dir / "signing-key.pem")}
             for number, state_dir in enumerate(sandboxes)}
    path.write_text(yaml.safe_dump({"okera_clusters": {"hosts": hosts, "vars": {
        "system_token_backup_dir": str(backups), "system_token_wait_sleep": 1}}}))
    return path


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command, env) -> tuple:
    """Wall seconds, CPU seconds (of every process it started) and output of a command."""
    started, cpu = time.monotonic(), _cpu_of_children()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit("failed: %s\n%s" % (" ".join(map(str, command)), done.stdout[-3000:]))
    return time.monotonic() - started, _cpu_of_children() - cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    playbook_tool = str(Path(sys.executable).with_name("ansible-playbook"))
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        collections = work / "collections"
        (collections / "ansible_collections" / "okera").mkdir(parents=True)
        (collections / "ansible_collections" / "okera" / "auth").symlink_to(REPO_ROOT)
        env = _environment(collections)
        sandboxes = [start_sandbox(work / ("sandbox%d" % number)) for number in range(args.clusters)]
        try:
            one = _inventory(work / "one.yml", sandboxes[:1], work / "backups")
            many = _inventory(work / "many.yml", sandboxes, work / "backups")
            single, single_cpu, parallel, parallel_cpu, manual, tasks = [], [], [], [], [], 0
            for _round in range(args.rounds):
                manual.append(manual_rotation(sandboxes[0]))
                seconds, cpu, output = _timed([playbook_tool, "-i", one, PLAYBOOK, "-e", "system_token_force=true"], env)
                single.append(seconds)
                single_cpu.append(cpu)
                tasks = int(re.search(r"ok=(\d+)", output.split("PLAY RECAP")[1]).group(1))
                seconds, cpu, _output = _timed([playbook_tool, "-i", many, PLAYBOOK, "-e", "system_token_force=true",
                                                "--forks", str(args.clusters)], env)
                parallel.append(seconds)
                parallel_cpu.append(cpu)
            floor_playbook = work / "floor.yml"
            floor_playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
                {"ansible.builtin.debug": {"msg": "x"}, "name": "no-op %d" % number} for number in range(tasks)]}]))
            floor = statistics.median(_timed([playbook_tool, floor_playbook], env)[0] for _round in range(args.rounds))
            startup = statistics.median(_timed([playbook_tool, "--version"], env)[0] for _round in range(args.rounds))
        finally:
            for state_dir in sandboxes:
                _sandbox("stop", "--state-dir", str(state_dir))
    one_s, many_s, manual_s = statistics.median(single), statistics.median(parallel), statistics.median(manual)
    one_cpu, many_cpu = statistics.median(single_cpu), statistics.median(parallel_cpu)
    cores = len(os.sched_getaffinity(0))
    print("manual procedure, 1 cluster:    %6.1f s (mint, kubectl patch, delete pods, wait)" % manual_s)
    print("rotation, 1 cluster:            %6.1f s (%d tasks), %.1f CPU-s" % (one_s, tasks, one_cpu))
    print("rotation, %d clusters, forks %d: %6.1f s, %.1f CPU-s" % (args.clusters, args.clusters, many_s, many_cpu))
    print("parallel cost ratio (N / 1):    %6.2f" % (many_s / one_s))
    # N clusters cannot take less than their CPU time spread over the cores: the bound any
    # design of the same CPU cost meets at best (one playbook run shares its start among them).
    print("CPU floor, %d clusters, %d cores: %6.1f s (%.2fx one cluster)" % (
        args.clusters, cores, many_cpu / cores, many_cpu / cores / one_s))
    print("floor: %d no-op tasks:          %6.1f s" % (tasks, floor))
    print("floor: ansible-playbook --version: %4.1f s" % startup)
    for text, ratio, ceiling in (("1 cluster against the manual procedure", one_s / manual_s, 3.0),
                                 ("%d clusters against 1" % args.clusters, many_s / one_s, 2.0)):
        print("goal %s: %s: %.2fx (<= %.0fx)" % ("met    " if ratio <= ceiling else "NOT met", text, ratio, ceiling))


if __name__ == "__main__":
    main()
