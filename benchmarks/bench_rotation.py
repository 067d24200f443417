"""rotate_system_token.yml wall time for 1 and N sandbox clusters in one run (one host each).

Prints the seconds of a forced rotation of one cluster, of N clusters with --forks N, and their
ratio (1.0 would be perfect parallelism), beside the floor of the same Ansible on this machine:
a playbook of as many no-op tasks as the rotation runs. Not part of the test run.

    python benchmarks/bench_rotation.py [--clusters 4] [--rounds 2]
"""
from __future__ import annotations

import argparse
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
sys.path.insert(0, str(REPO_ROOT / "tests"))

from sandbox_cluster import Sandbox  # noqa: E402  (tests/ holds the sandbox helper)

PLAYBOOK = REPO_ROOT / "playbooks" / "rotate_system_token.yml"


def _environment(collections: Path) -> dict:
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1")


def _inventory(path: Path, sandboxes, backups: Path) -> Path:
    hosts = {"cluster%d" % number: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                    "system_token_kubeconfig": str(sandbox.kubeconfig),
                                    "system_token_private_key_path": str(sandbox.signing_key)}
             for number, sandbox in enumerate(sandboxes)}
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
        sandboxes = [Sandbox(work / ("sandbox%d" % number), "30d") for number in range(args.clusters)]
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
            for sandbox in sandboxes:
                sandbox.stop()
    one_s, many_s = statistics.median(single), statistics.median(parallel)
    print("rotation, 1 cluster:            %6.1f s (%d tasks)" % (one_s, tasks))
    print("rotation, %d clusters, forks %d: %6.1f s" % (args.clusters, args.clusters, many_s))
    print("parallel cost ratio (N / 1):    %6.2f" % (many_s / one_s))
    print("floor: %d no-op tasks:          %6.1f s" % (tasks, floor))


if __name__ == "__main__":
    main()
