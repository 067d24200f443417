"""Sandbox clusters and inventories for the system-token playbooks."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Dict

import pytest
import yaml

from sandbox_cluster import Sandbox


@pytest.fixture
def make_sandbox(tmp_path) -> Callable[..., Sandbox]:
    """make_sandbox(name, token_ttl='2d') starts a sandbox cluster; all are stopped afterwards."""
    started = []

    def make(name: str = "cluster1", token_ttl: str = "2d") -> Sandbox:
        sandbox = Sandbox(tmp_path / name, token_ttl)
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def write_inventory(tmp_path) -> Callable[..., Path]:
    """write_inventory({host: sandbox or vars}) -> inventory path: one local host per cluster."""

    def write(hosts: Dict[str, object], **group_vars) -> Path:
        entries = {}
        for name, spec in hosts.items():
            if isinstance(spec, Sandbox):
                spec = {"system_token_kubeconfig": str(spec.kubeconfig),
                        "system_token_private_key_path": str(spec.signing_key)}
            entries[name] = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable}, **spec)
        variables = dict({"system_token_backup_dir": str(tmp_path / "backups"), "system_token_wait_sleep": 1,
                          "system_token_wait_timeout": 60}, **group_vars)
        path = tmp_path / "inventory.yml"
        path.write_text(yaml.safe_dump({"okera_clusters": {"hosts": entries, "vars": variables}}))
        return path

    return write
