"""--help-long, --help-man and --version: made from OPTIONS, so no option can be left out."""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

from okera_auth.authserver import manual
from okera_auth.authserver.options import ENV_PREFIX, OPTIONS, build_parser

REPO_ROOT = Path(__file__).resolve().parents[3]


def _galaxy_version() -> str:
    return re.search(r"^version:\s*(\S+)", (REPO_ROOT / "galaxy.yml").read_text(), re.M).group(1)


def test_version_is_the_package_metadata():
    assert manual.version_text() == "okera-authserver %s\n" % metadata.version("okera-auth")


def test_version_falls_back_to_galaxy_yml_in_a_source_tree(monkeypatch):
    def missing(_name):
        raise metadata.PackageNotFoundError(_name)
    monkeypatch.setattr(manual.metadata, "version", missing)
    assert manual.package_version() == _galaxy_version()


def test_package_and_collection_versions_agree():
    assert metadata.version("okera-auth") == _galaxy_version()


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.long_flag)
def test_long_help_gives_every_option_its_variables_and_default(option):
    text = manual.long_help()
    block = text[text.index("\n  %s" % ", ".join(option.flags)):]
    block = block[:block.index("\n  -", 1)] if "\n  -" in block[1:] else block
    assert ENV_PREFIX + option.env_name in block
    assert "default: %s;" % manual.default_summary(option) in " ".join(block.split())
    for name in option.tutorial_env:
        assert "$" + name in block


def test_long_help_shows_defaults_as_users_write_them():
    text = " ".join(manual.long_help().split())
    for expected in ("default: 5001;", "default: /tmp/tokens;", "default: rsa512;", "default: okera;",
                     "default: 24h;", "default: 10s;", "default: 0640;", "default: none (required);",
                     "default: off; environment: OKERA_AUTHSERVER_DISABLE_DELETE (true/false)"):
        assert expected in text, expected


def test_man_page_documents_every_option_and_variable():
    page = manual.man_page()
    assert page.startswith(".TH OKERA\\-AUTHSERVER 1 ")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "HTTP", "SIGNALS",
                    "EXIT STATUS"):
        assert "\n.SH %s\n" % section in page
    for option in OPTIONS:
        assert "\\fB%s\\fR" % option.long_flag.replace("-", "\\-") in page
        assert (ENV_PREFIX + option.env_name).replace("-", "\\-") in page
    # Text lines never start a roff request by accident, and no raw backslash is left.
    for line in page.splitlines():
        assert not line.startswith("'")
        assert not re.search(r"\\(?![-e&fB]|fR|fI|fB)", line), line


def test_short_help_points_to_the_long_help_and_the_man_page():
    assert "also try --help-long and --help-man" in " ".join(build_parser().format_help().split())
