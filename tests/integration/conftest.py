"""Real ansible-playbook runs against this checkout, installed as okera.auth."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def ansible_tool(name: str) -> str:
    """The ansible command beside the running Python (the venv's), else the one on PATH."""
    beside_python = Path(sys.executable).with_name(name)
    return str(beside_python) if beside_python.exists() else (shutil.which(name) or name)


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory) -> Path:
    """An ANSIBLE_COLLECTIONS_PATH where okera.auth is this checkout."""
    root = tmp_path_factory.mktemp("collections")
    namespace = root / "ansible_collections" / "okera"
    namespace.mkdir(parents=True)
    (namespace / "auth").symlink_to(REPO_ROOT)
    # amazon.aws, as scripts/test.sh installs it (from the ansible wheel on PyPI), when present.
    amazon_aws = REPO_ROOT / ".cache" / "collections" / "ansible_collections" / "amazon" / "aws"
    if amazon_aws.is_dir():
        (root / "ansible_collections" / "amazon").mkdir()
        (root / "ansible_collections" / "amazon" / "aws").symlink_to(amazon_aws)
    return root


@pytest.fixture
def aws_env(collections_path, moto) -> dict:
    """Variables for an ansible-playbook run against moto's server: dummy credentials, its region.

    Fails (not skips) when amazon.aws is missing: scripts/test.sh installs it."""
    if not (collections_path / "ansible_collections" / "amazon" / "aws").is_dir():
        pytest.fail("amazon.aws is not installed in .cache/collections: run scripts/test.sh (scripts/install-amazon-aws.sh)")
    return dict(moto.environment(), OKERA_TEST_AWS_ENDPOINT=moto.url)


@pytest.fixture
def ansible_env(collections_path) -> dict:
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0",
                ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
                ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_RETRY_FILES_ENABLED="0")


@pytest.fixture
def run_playbook(ansible_env, tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """run_playbook(path, *args, env=None) runs ansible-playbook and returns the finished process."""

    def run(playbook, *args: str, env: dict = None, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([ansible_tool("ansible-playbook"), str(playbook), *args],
                              capture_output=True, text=True, env=dict(ansible_env, **(env or {})),
                              cwd=tmp_path, timeout=timeout, check=False)

    return run
