"""rotate_system_token.yml wall time for 1 and N sandbox clusters in one run (one host each).

Prints the seconds of a forced rotation of one cluster, of N clusters with --forks N, and their
ratio (1.0 would be perfect parallelism), beside the floor of the same Ansible on this machine:
a playbook of as many no-op tasks as the rotation runs. Not part of the test run.

    python benchmarks/bench_rotation.py [--clusters 4] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

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
    deadline = time.monotonic() + 60
    while True:
        report = json.loads(_sandbox("status", "--state-dir", str(state_dir), "--json"))
        if report["pods_total"] and report["pods_ready"] == report["pods_total"]:
            return state_dir
        if time.monotonic() > deadline:
            raise SystemExit("the pods of the sandbox %s were not ready within 60 s" % state_dir)
        time.sleep(0.2)


def _inventory(path: Path, sandboxes, backups: Path) -> Path:
    hosts = {"cluster%d" % number: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                    "system_token_kubeconfig": str(state_dir / "kubeconfig"),
                                    "system_token_private_key_path": str(state_dir / "signing-key.pem")}
             for number, state_dir in enumerate(sandboxes)}
    path.write_text(yaml.safe_dump({"okera_clusters": {"hosts": hosts, "vars": {
        "system_token_backup_dir": str(backups), "system_token_wait_sleep": 1}}}))
    return path


def _timed(command, env) -> tuple:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit("failed: %s\n%s" % (" ".join(map(str, command)), done.stdout[-3000:]))
    return time.monotonic() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=4)
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
            single, parallel, tasks = [], [], 0
            for _round in range(args.rounds):
                seconds, output = _timed([playbook_tool, "-i", one, PLAYBOOK, "-e", "system_token_force=true"], env)
                single.append(seconds)
                tasks = int(re.search(r"ok=(\d+)", output.split("PLAY RECAP")[1]).group(1))
                seconds, _output = _timed([playbook_tool, "-i", many, PLAYBOOK, "-e", "system_token_force=true",
                                           "--forks", str(args.clusters)], env)
                parallel.append(seconds)
            floor_playbook = work / "floor.yml"
            floor_playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
                {"ansible.builtin.debug": {"msg": "x"}, "name": "no-op %d" % number} for number in range(tasks)]}]))
            floor = statistics.median(_timed([playbook_tool, floor_playbook], env)[0] for _round in range(args.rounds))
        finally:
            for state_dir in sandboxes:
                _sandbox("stop", "--state-dir", str(state_dir))
    one_s, many_s = statistics.median(single), statistics.median(parallel)
    print("rotation, 1 cluster:            %6.1f s (%d tasks)" % (one_s, tasks))
    print("rotation, %d clusters, forks %d: %6.1f s" % (args.clusters, args.clusters, many_s))
    print("parallel cost ratio (N / 1):    %6.2f" % (many_s / one_s))
    print("floor: %d no-op tasks:          %6.1f s" % (tasks, floor))


if __name__ == "__main__":
    main()
