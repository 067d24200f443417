"""Conventions every role keeps: one naming rule for internal variables, one minimum Ansible."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(path for path in (REPO_ROOT / "roles").iterdir() if (path / "tasks").is_dir())


def _tasks(role: Path):
    """Every task of the role's task and handler files, blocks flattened."""
    def walk(tasks):
        for task in tasks or []:
            yield task
            for section in ("block", "rescue", "always"):
                yield from walk(task.get(section))
    for folder in ("tasks", "handlers"):
        for path in sorted((role / folder).glob("*.yml")):
            yield from walk(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_internal_variables_are_underscore_and_role_prefixed(role):
    """Registered results, set_fact names and vars/main.yml are the role's own: _<role>_<name>.
    Public variables (defaults/main.yml) are <role>_<name>; nothing else may look like one."""
    prefix = "_%s_" % role.name
    internal = set()
    for task in _tasks(role):
        if "register" in task:
            internal.add(task["register"])
        for module in ("ansible.builtin.set_fact", "set_fact"):
            internal.update(name for name in (task.get(module) or {}) if name != "cacheable")
    variables = role / "vars" / "main.yml"
    if variables.exists():
        internal.update(yaml.safe_load(variables.read_text()) or {})
    assert sorted(name for name in internal if not name.startswith(prefix)) == []


def _minimum(text: str) -> str:
    return re.match(r">=\s*(\d+\.\d+)", text).group(1)


def test_every_role_has_the_collections_minimum_ansible():
    required = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    for role in ROLES:
        info = yaml.safe_load((role / "meta" / "main.yml").read_text())["galaxy_info"]
        assert str(info["min_ansible_version"]) == _minimum(required), role.name
