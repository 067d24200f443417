"""The signing_key role's specs: every key store it accepts has its tasks. (What every role keeps is in test_role_conventions.py.)"""
from __future__ import annotations

from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "signing_key"


def _load(relative: str) -> dict:
    return yaml.safe_load((ROLE / relative).read_text())


def test_every_store_the_role_accepts_has_its_tasks():
    stores = _load("vars/main.yml")["_signing_key_stores"]
    choices = _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]["signing_key_store"]["choices"]
    assert sorted(stores) == sorted(choices)
    assert all((ROLE / "tasks" / ("store_%s.yml" % store)).is_file() for store in stores)
