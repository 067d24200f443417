"""A sandbox cluster and an inventory for rotate_signing_key.yml."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

from authserver_process import Daemon
from sandbox_cluster import Sandbox


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    """A sandbox cluster whose system token has 30 days left; stopped afterwards."""
    started = Sandbox(tmp_path / "cluster", "30d")
    yield started
    started.stop()


@pytest.fixture
def write_inventory(tmp_path, sandbox) -> Callable[..., Path]:
    """write_inventory(**host_vars) -> inventory path: the sandbox as the one host of okera_clusters."""

    def write(node: Daemon = None, node_vars: dict = None, **host_vars) -> Path:
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        host = dict(local, signing_key_kubeconfig=str(sandbox.kubeconfig), **host_vars)
        inventory = {"okera_clusters": {"hosts": {"sandbox": host}, "vars": {
            "signing_key_backup_dir": str(tmp_path / "backups"), "signing_key_wait_sleep": 1, "signing_key_wait_timeout": 60}}}
        if node:
            # The node is this machine, its auth server the process the test started (no systemd: a signal reloads it).
            host.update(signing_key_authserver_hosts=["node1"], signing_key_authserver_reload_command="kill -HUP %d" % node.process.pid)
            inventory["okera_authserver_nodes"] = {"hosts": {"node1": dict(
                local, authserver_private_key_path=str(getattr(node, "key_path", "")), authserver_port=node.port,
                authserver_user=pwd.getpwuid(os.getuid()).pw_name, authserver_group=grp.getgrgid(os.getgid()).gr_name,
                **(node_vars or {}))}}
        path = tmp_path / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory))
        return path

    return write


@pytest.fixture
def node_authserver(tmp_path, sandbox) -> Daemon:
    """okera-authserver signing with the sandbox's key, as on a node; stopped afterwards."""
    key = tmp_path / "node" / "private_key.pem"
    key.parent.mkdir()
    shutil.copyfile(sandbox.signing_key, key)
    key.chmod(0o400)
    daemon = Daemon(tmp_path / "node", key, ["--ttl", "1h"])
    daemon.key_path = key
    yield daemon
    daemon.stop()
