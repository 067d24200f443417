"""The signing_key role: defaults and meta/argument_specs.yml list the same variables, and agree."""
from __future__ import annotations

from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "signing_key"


def _load(relative: str) -> dict:
    return yaml.safe_load((ROLE / relative).read_text())


def test_every_default_is_documented_and_every_option_has_a_default():
    defaults = _load("defaults/main.yml")
    options = _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)


def test_documented_defaults_equal_the_defaults():
    defaults = _load("defaults/main.yml")
    for name, option in _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"].items():
        if "default" in option:
            assert option["default"] == defaults[name], name
        elif isinstance(defaults[name], str) and "{{" in defaults[name]:
            # A default taken from the system_token role's variable: described in words.
            assert "defaults to" in option["description"].lower(), name
        else:
            assert defaults[name] is None, "%s has default %r but argument_specs none" % (name, defaults[name])


def test_variables_carry_the_role_prefix():
    assert all(name.startswith("signing_key_") for name in _load("defaults/main.yml"))


def test_every_store_the_role_accepts_has_its_tasks():
    stores = _load("vars/main.yml")["_signing_key_stores"]
    choices = _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]["signing_key_store"]["choices"]
    assert sorted(stores) == sorted(choices)
    assert all((ROLE / "tasks" / ("store_%s.yml" % store)).is_file() for store in stores)
