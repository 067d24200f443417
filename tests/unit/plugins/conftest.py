"""Make the checkout importable as ansible_collections.okera.auth for module and filter tests."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def _collection_root(tmp_path_factory) -> str:
    root = tmp_path_factory.getbasetemp() / "collections"
    namespace = root / "ansible_collections" / "okera"
    if not (namespace / "auth").exists():
        namespace.mkdir(parents=True, exist_ok=True)
        (namespace / "auth").symlink_to(REPO_ROOT, target_is_directory=True)
    return str(root)


@pytest.fixture(scope="session", autouse=True)
def collection_on_path(tmp_path_factory):
    root = _collection_root(tmp_path_factory)
    if root not in sys.path:
        sys.path.insert(0, root)
    yield


@pytest.fixture
def run_module(capsys):
    """run_module(module, args, check_mode=False, diff=False) -> (result dict, failed bool)."""
    from ansible.module_utils.testing import patch_module_args

    def run(module, args, check_mode=False, diff=False):
        arguments = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(arguments), pytest.raises(SystemExit) as exited:
            module.main()
        result = json.loads(capsys.readouterr().out)
        return result, exited.value.code != 0 or bool(result.get("failed"))

    return run
