"""A sandbox cluster and an inventory for rotate_signing_key.yml."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

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

    def write(**host_vars) -> Path:
        host = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                     "signing_key_kubeconfig": str(sandbox.kubeconfig)}, **host_vars)
        variables = {"signing_key_backup_dir": str(tmp_path / "backups"), "signing_key_wait_sleep": 1,
                     "signing_key_wait_timeout": 60}
        path = tmp_path / "inventory.yml"
        path.write_text(yaml.safe_dump({"okera_clusters": {"hosts": {"sandbox": host}, "vars": variables}}))
        return path

    return write
