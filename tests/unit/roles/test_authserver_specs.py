"""The authserver role: defaults and meta/argument_specs.yml agree, and every daemon flag is a variable."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from okera_auth.authserver import build_parser

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


def test_every_daemon_flag_is_set_by_the_environment_file():
    template = (ROLE / "templates" / "okera-authserver.env.j2").read_text()
    settings = set(re.findall(r"setting\('([A-Z_]+)'", template))
    # --claim is repeatable on the command line; its environment form is one JSON object.
    renamed = {"CLAIM": "CLAIMS"}
    flags = {
        renamed.get(name, name)
        for action in build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
        for name in [option[2:].upper().replace("-", "_")]
    }
    assert flags - settings == set(), "daemon flags without a role variable"
    assert settings - flags == set(), "settings the daemon does not know"
