"""The authserver role: defaults and meta/argument_specs.yml agree, and every daemon flag is a variable."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from okera_auth.authserver.options import OPTIONS, OPTIONS_BY_NAME, parse_settings

ROLE = Path(__file__).resolve().parents[3] / "roles" / "authserver"
PYTHON_TYPES = {"str": str, "path": str, "bool": bool, "int": int, "list": list, "dict": dict}


def _load(relative: str) -> dict:
    return yaml.safe_load((ROLE / relative).read_text())


def _options() -> dict:
    return _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def test_every_default_is_documented_and_every_option_has_a_default():
    assert sorted(_load("defaults/main.yml")) == sorted(_options())


@pytest.mark.parametrize("name", sorted(_options()))
def test_documented_default_type_and_choices_match_the_default(name):
    default = _load("defaults/main.yml")[name]
    option = _options()[name]
    assert option.get("default") == default, name
    assert isinstance(default, PYTHON_TYPES[option["type"]]), name
    if "choices" in option:
        assert default in option["choices"], name
    assert option.get("description"), name


def test_variables_carry_the_role_prefix():
    assert all(name.startswith("authserver_") for name in _load("defaults/main.yml"))


def test_every_variable_is_used_by_the_role():
    used = "\n".join(path.read_text() for folder in ("tasks", "templates", "handlers", "vars")
                     for path in (ROLE / folder).iterdir())
    unused = [name for name in _load("defaults/main.yml") if not re.search(r"\b%s\b" % name, used)]
    assert unused == []


def _environment_settings() -> dict:
    """ENV_NAME -> the role variable that the environment template sets it from."""
    template = (ROLE / "templates" / "okera-authserver.env.j2").read_text()
    found = {}
    for name, expression in re.findall(r"setting\('([A-Z_]+)', ([^)]*)\)", template):
        variable = re.search(r"_?authserver_\w+", expression)
        found[name] = variable.group(0) if variable else None
    return found


def test_every_daemon_option_is_set_by_the_environment_file():
    settings = _environment_settings()
    known = {option.env_name for option in OPTIONS}
    assert known - set(settings) == set(), "daemon options without a role variable"
    assert set(settings) - known == set(), "settings the daemon does not know"


# Role variables whose default differs from the daemon's on purpose, or that are not the same
# value: workers 0 means "the daemon decides"; the key and groups paths are the role's own files;
# a node runs one worker process per CPU (auto), the daemon alone one (a sidecar's share).
ROLE_OWN_DEFAULTS = {"WORKERS", "PRIVATE_KEY", "PRIVATE_KEY_PASSPHRASE_FILE", "GROUPS_FILE",
                     "PROCESSES"}
# Variables that switch a daemon flag the other way round (authserver_tcp: true = no --no-tcp).
INVERTED = {"NO_TCP": "authserver_tcp", "NO_JTI": "authserver_jti"}


@pytest.mark.parametrize("option", [option for option in OPTIONS if option.env_name not in ROLE_OWN_DEFAULTS],
                         ids=lambda option: option.env_name)
def test_role_defaults_are_the_daemons(option, monkeypatch):
    for name in list(os.environ):
        if name.startswith("OKERA_AUTHSERVER_"):
            monkeypatch.delenv(name)
    variable = INVERTED.get(option.env_name) or _environment_settings()[option.env_name]
    role_default = _load("defaults/main.yml")[variable]
    daemon = parse_settings(["-k", "key.pem"])
    if option.env_name in INVERTED:
        assert role_default is not daemon.__dict__[option.name]
        return
    role_value = role_default if not isinstance(role_default, str) else option.convert(role_default, option.name)
    expected = daemon.__dict__[option.name]
    assert role_value == expected or (role_value in ("", [], {}) and expected in (None, "", [], {})), variable


def test_option_table_has_one_entry_per_flag_and_variable():
    assert len({option.env_name for option in OPTIONS}) == len(OPTIONS) == len(OPTIONS_BY_NAME)
