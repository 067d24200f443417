"""Conventions every role keeps: one naming rule for variables, one minimum Ansible, defaults and
argument specs that list the same variables with the same values."""
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


def _load(role: Path, relative: str) -> dict:
    return yaml.safe_load((role / relative).read_text())


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_default_is_documented_and_every_option_has_a_default(role):
    defaults = _load(role, "defaults/main.yml")
    options = {}
    for entry_point in _load(role, "meta/argument_specs.yml")["argument_specs"].values():
        options.update(entry_point["options"])
    assert sorted(defaults) == sorted(options)


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_documented_defaults_equal_the_defaults(role):
    defaults = _load(role, "defaults/main.yml")
    for entry_point in _load(role, "meta/argument_specs.yml")["argument_specs"].values():
        for name, option in entry_point["options"].items():
            if "default" in option:
                assert option["default"] == defaults[name], name
            elif option.get("required"):
                continue  # the role refuses to run without it; its placeholder is never used
            elif isinstance(defaults[name], str) and "{{" in defaults[name]:
                # A default taken from another variable: described in words, not validated as text.
                assert "defaults to" in option["description"].lower(), name
            else:
                assert defaults[name] is None, "%s has default %r but argument_specs none" % (name, defaults[name])


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_public_variables_carry_the_role_prefix(role):
    assert [name for name in _load(role, "defaults/main.yml") if not name.startswith(role.name + "_")] == []


def _file_mode_patterns():
    """(role, variable, the pattern its preflight holds the token files' mode to)."""
    for role in ROLES:
        for task in _tasks(role):
            for name, pattern in (task.get("vars") or {}).items():
                if name.endswith("_file_mode_pattern"):
                    yield role.name, name[1:-len("_pattern")], pattern


def test_the_roles_accept_exactly_the_file_modes_the_daemon_accepts():
    """A mode the role lets through but the daemon refuses would fail the service after the
    install; one the role refuses but the daemon takes would be a needless failure."""
    from okera_auth.authserver.options import OPTIONS_BY_NAME, StartupError  # pylint: disable=import-outside-toplevel  # the daemon's rule

    def daemon_accepts(text: str) -> bool:
        try:
            OPTIONS_BY_NAME["file_mode"].convert(text, "file-mode")
        except StartupError:
            return False
        return True

    texts = [form % mode for mode in range(0o1000) for form in ("%04o", "%o", "0o%03o")] + ["1640", "00640", "0"]
    accepted = {text for text in texts if daemon_accepts(text)}
    assert {"0640", "0600", "0440", "0400"} <= accepted and not {"0666", "0604", "0660", "1640"} & accepted
    found = sorted(_file_mode_patterns())
    assert [(role, variable) for role, variable, _pattern in found] == [
        ("authserver", "authserver_file_mode"), ("authserver_sidecar", "authserver_sidecar_file_mode")]
    for role, variable, pattern in found:
        default = yaml.safe_load((REPO_ROOT / "roles" / role / "defaults" / "main.yml").read_text())[variable]
        assert default in accepted, (role, default)
        assert {text for text in texts if re.match(pattern, text)} == accepted, role
