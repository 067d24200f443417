"""The system_token role's specs: the check entry point is a part of main. (What every role keeps is in test_role_conventions.py.)"""
from __future__ import annotations

from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "system_token"


def _load(relative: str) -> dict:
    return yaml.safe_load((ROLE / relative).read_text())


def test_check_entry_point_options_are_a_subset_of_main():
    specs = _load("meta/argument_specs.yml")["argument_specs"]
    assert set(specs["check"]["options"]) <= set(specs["main"]["options"])
    for name, option in specs["check"]["options"].items():
        assert option == specs["main"]["options"][name], name
