"""The authserver_sidecar role: defaults and meta/argument_specs.yml agree, and every boolean
variable is read through | bool (-e name=false gives the string "false", which Jinja takes as true)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "authserver_sidecar"


def _options() -> dict:
    return yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]


def _defaults() -> dict:
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def test_every_default_is_documented_with_the_same_value():
    options, defaults = _options(), _defaults()
    assert sorted(defaults) == sorted(options)
    for name, value in defaults.items():
        assert options[name].get("required") or options[name].get("default") == value, name
        assert options[name].get("description"), name


def _expressions() -> list:
    """Every Jinja expression of the role: {{ }} and {% %} blocks of tasks and templates, and `when:`."""
    found = []
    for path in sorted((ROLE / "tasks").glob("*.yml")) + sorted((ROLE / "templates").iterdir()):
        text = path.read_text()
        found += re.findall(r"\{\{.*?\}\}|\{%.*?%\}", text, re.S)
        if path.suffix == ".yml":
            for task in yaml.safe_load(text) or []:
                when = task.get("when", [])
                found += when if isinstance(when, list) else [when]
    return found


@pytest.mark.parametrize("name", sorted(name for name, spec in _options().items() if spec["type"] == "bool"))
def test_boolean_variable_is_only_read_through_bool(name):
    uses = [(expression, match.end()) for expression in _expressions()
            for match in re.finditer(r"\b%s\b" % name, expression)]
    assert uses, "%s is never used" % name
    assert [expression for expression, end in uses if not re.match(r"\s*\|\s*bool\b", expression[end:])] == []
