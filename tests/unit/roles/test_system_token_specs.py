"""The system_token role: defaults and meta/argument_specs.yml list the same variables, and agree."""
from __future__ import annotations

from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "system_token"


def _load(relative: str) -> dict:
    return yaml.safe_load((ROLE / relative).read_text())


def test_every_default_is_documented_and_every_option_has_a_default():
    defaults = _load("defaults/main.yml")
    options = _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)


def test_documented_defaults_equal_the_defaults():
    defaults = _load("defaults/main.yml")
    for entry_point in _load("meta/argument_specs.yml")["argument_specs"].values():
        for name, option in entry_point["options"].items():
            if "default" in option:
                assert option["default"] == defaults[name], name
            elif isinstance(defaults[name], str) and "{{" in defaults[name]:
                # A default taken from another variable: described in words, not validated as text.
                assert "defaults to" in option["description"].lower(), name
            else:
                assert defaults[name] is None, "%s has default %r but argument_specs none" % (name, defaults[name])


def test_check_entry_point_options_are_a_subset_of_main():
    specs = _load("meta/argument_specs.yml")["argument_specs"]
    assert set(specs["check"]["options"]) <= set(specs["main"]["options"])
    for name, option in specs["check"]["options"].items():
        assert option == specs["main"]["options"][name], name


def test_variables_carry_the_role_prefix():
    assert all(name.startswith("system_token_") for name in _load("defaults/main.yml"))
