"""The option table: flags, OKERA_AUTHSERVER_* variables, defaults and one-line setting errors."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from okera_auth.authserver.options import ENV_PREFIX, OPTIONS, StartupError, parse_settings
from okera_auth.module_utils.errors import ClaimsError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("OKERA_AUTHSERVER_"):
            monkeypatch.delenv(name)


def test_defaults_are_okeras():
    settings = parse_settings(["-k", "key.pem"])
    assert (settings.port, settings.directory, settings.algorithm, settings.group) == (
        5001, "/tmp/tokens", "rsa512", "okera")
    assert not settings.disable_delete and settings.bind == "127.0.0.1"
    assert (settings.ttl, settings.delete_after, settings.file_mode) == (86400, 10, 0o640)
    # One process signing in its own thread, as Okera's binary is one process.
    assert settings.log_format == "text" and (settings.processes, settings.workers) == (1, 0)


def test_short_flags_are_okeras():
    settings = parse_settings(["-p", "6000", "-d", "/srv/t", "-k", "k", "-a", "RSA256",
                               "--disable-delete", "-g", "users"])
    assert (settings.port, settings.directory, settings.private_key, settings.algorithm,
            settings.disable_delete, settings.group) == (6000, "/srv/t", "k", "RSA256", True, "users")


def test_every_flag_has_an_environment_variable(monkeypatch):
    values = {
        "PORT": "6001", "DIRECTORY": "/srv/tokens", "PRIVATE_KEY": "/k.pem", "ALGORITHM": "PS256",
        "DISABLE_DELETE": "true", "GROUP": "1234", "TTL": "90m", "DELETE_AFTER": "30s",
        "ISSUER": "cluster", "AUDIENCE": "okera, presto", "CLAIMS": '{"tenant": "blue"}',
        "GROUPS_FILE": "/g.json", "UNIX_SOCKET": "/run/a.sock", "ALLOWED_UIDS": "1,2",
        "ALLOWED_GIDS": "3", "FILE_MODE": "0600", "LOG_FORMAT": "json", "BIND": "127.0.0.2",
        "WORKERS": "3", "PRIVATE_KEY_PASSPHRASE_FILE": "/p", "NO_TCP": "yes", "PROCESSES": "3",
    }
    for name, value in values.items():
        monkeypatch.setenv("OKERA_AUTHSERVER_" + name, value)
    settings = parse_settings([])
    assert settings.port == 6001 and settings.directory == "/srv/tokens"
    assert settings.private_key == "/k.pem" and settings.algorithm == "PS256"
    assert settings.disable_delete and settings.group == "1234"
    assert (settings.ttl, settings.delete_after) == (5400, 30)
    assert settings.issuer == "cluster" and settings.audience == ["okera", "presto"]
    assert settings.claims == {"tenant": "blue"} and settings.groups_file == "/g.json"
    assert settings.unix_socket == "/run/a.sock" and settings.no_tcp
    assert (settings.allowed_uids, settings.allowed_gids) == ([1, 2], [3])
    assert settings.file_mode == 0o600 and settings.log_format == "json"
    assert settings.bind == "127.0.0.2" and settings.workers == 3 and settings.processes == 3
    assert settings.private_key_passphrase_file == "/p"


def test_flags_win_over_environment(monkeypatch):
    monkeypatch.setenv("OKERA_AUTHSERVER_PORT", "6001")
    monkeypatch.setenv("OKERA_AUTHSERVER_AUDIENCE", "a,b")
    monkeypatch.setenv("OKERA_AUTHSERVER_CLAIMS", '{"x": 1}')
    settings = parse_settings(["-k", "k", "-p", "7000", "--audience", "c", "--claim", "y=[1,2]"])
    assert settings.port == 7000 and settings.audience == ["c"] and settings.claims == {"y": [1, 2]}


@pytest.mark.parametrize("argv, env, message", [
    ([], {}, "no private key given"),
    (["-k", "k", "--bind", "0.0.0.0"], {}, "not a loopback address"),
    (["-k", "k", "--bind", "10.1.2.3"], {}, "not a loopback address"),
    (["-k", "k", "--bind", "example.com"], {}, "not an IP address"),
    (["-k", "k", "--file-mode", "0999"], {}, "not an octal mode"),
    (["-k", "k", "--no-tcp"], {}, "needs --unix-socket"),
    (["-k", "k", "--allowed-uids", "1"], {}, "give --unix-socket"),
    (["-k", "k", "--unix-socket", "/s", "--allowed-uids", "root"], {}, "comma-separated numbers"),
    (["-k", "k", "--claim", "novalue"], {}, "is not KEY=VALUE"),
    (["-k", "k"], {"DISABLE_DELETE": "maybe"}, "is not true or false"),
    (["-k", "k"], {"CLAIMS": "[1]"}, "must be a JSON object"),
    (["-k", "k"], {"PORT": "http"}, "is not a whole number"),
    (["-k", "k", "-p", "70000"], {}, "between 0 and 65535"),
    # Unbounded, these would fork or spawn until the node runs out.
    (["-k", "k", "--processes", "65"], {}, "processes 65 is more than 64: give at most one per CPU"),
    (["-k", "k"], {"PROCESSES": "99999"}, "is more than 64"),
    (["-k", "k", "--workers", "100000"], {}, "workers 100000 is more than 64"),
    # Token files are read by their owner and group only; the group never writes them.
    (["-k", "k", "--file-mode", "0666"], {}, "file mode 0666 lets others at token files: give a mode"),
    (["-k", "k", "--file-mode", "0604"], {}, "lets others at token files"),
    (["-k", "k", "--file-mode", "0641"], {}, "lets others at token files"),
    (["-k", "k", "--file-mode", "0660"], {}, "file mode 0660 lets the group write token files"),
    (["-k", "k"], {"FILE_MODE": "0644"}, "0600, 0640, 0440 or 0400"),
    # chown's "leave unchanged" (-1 as uid_t) and anything above it are no ids.
    (["-k", "k", "-g", "99999999999"], {}, "group 99999999999 is not a uid or gid: give a number from 0 to 4294967294"),
    (["-k", "k", "-g", "4294967295"], {}, "group 4294967295 is not a uid or gid"),
    (["-k", "k"], {"GROUP": "4294967295"}, "is not a uid or gid"),
    (["-k", "k", "--unix-socket", "/s", "--no-tcp", "--allowed-uids", "1,4294967295"], {},
     "allowed-uids 4294967295 is not a uid or gid"),
    (["-k", "k", "--unix-socket", "/s", "--no-tcp"], {"ALLOWED_GIDS": "99999999999999999999"},
     "allowed-gids 99999999999999999999 is not a uid or gid"),
    # JSON from flags and variables is held to the depth of a token's claims.
    (["-k", "k", "--claim", "x=" + "[" * 5000 + "]" * 5000], {}, "claim x is nested too deeply: JSON of at most 32"),
    (["-k", "k", "--claim", "x=" + "[" * 33 + "]" * 33], {}, "claim x is nested too deeply"),
    (["-k", "k"], {"CLAIMS": '{"x": %s}' % ("[" * 5000 + "]" * 5000)}, "OKERA_AUTHSERVER_CLAIMS is nested too deeply"),
    (["-k", "k", "--unix-socket", "/tmp/" + "s" * 103], {}, "the path is 108 bytes long, longer than the 107 bytes"),
])
def test_bad_settings_are_one_line_errors(monkeypatch, argv, env, message):
    for name, value in env.items():
        monkeypatch.setenv("OKERA_AUTHSERVER_" + name, value)
    with pytest.raises(StartupError, match=re.escape(message)):
        parse_settings(argv)


def test_the_edges_of_modes_ids_depth_and_socket_paths_are_accepted():
    settings = parse_settings(["-k", "k", "--file-mode", "0400", "-g", "4294967294", "--claim",
                               "x=" + "[" * 32 + "]" * 32, "--unix-socket", "/tmp/" + "s" * 102,
                               "--no-tcp", "--allowed-uids", "0,4294967294"])
    assert (settings.file_mode, settings.group, settings.allowed_uids) == (0o400, "4294967294", [0, 4294967294])
    for mode in ("0600", "0640", "0440", "0700", "0o750"):
        assert parse_settings(["-k", "k", "--file-mode", mode]).file_mode == int(mode[-3:], 8)


def test_the_most_processes_and_workers_are_accepted():
    settings = parse_settings(["-k", "k", "--processes", "64", "--workers", "64"])
    assert (settings.processes, settings.workers) == (64, 64)


def test_bad_duration_is_an_error():
    with pytest.raises(ClaimsError, match="not understood"):
        parse_settings(["-k", "k", "--ttl", "soon"])


def test_localhost_and_ipv6_loopback_are_accepted():
    assert parse_settings(["-k", "k", "--bind", "localhost"]).bind == "127.0.0.1"
    assert parse_settings(["-k", "k", "--bind", "::1"]).bind == "::1"


def test_readme_options_table_lists_every_option_with_its_variable():
    """The README's table is written by hand: hold it against OPTIONS, the one home of the facts."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    table = readme[readme.index("### Options"):readme.index("### HTTP")]
    rows = {line.split("|")[1]: line for line in table.splitlines() if line.startswith("| `-")}
    for option in OPTIONS:
        row = next((line for cell, line in rows.items() if "`%s" % option.long_flag in cell), None)
        assert row is not None, option.long_flag
        assert "`%s%s`" % (ENV_PREFIX, option.env_name) in row, option.long_flag
    assert len(rows) == len(OPTIONS)


# --- Okera's tutorial container names (PORT, TOKEN_DIR, SECRET_DIR, ...) --------------------

TUTORIAL_ENV = {"PORT": "5002", "TOKEN_DIR": "/usr/share/myservice/tokens",
                "SECRET_DIR": "/etc/secrets", "ALGORITHM": "RSA256", "GID": "2000"}


def test_tutorial_names_are_read_only_in_tutorial_mode():
    plain = parse_settings(["-k", "k"], environ=TUTORIAL_ENV)
    assert (plain.port, plain.directory, plain.algorithm, plain.group) == (5001, "/tmp/tokens", "rsa512", "okera")
    for switch, environ in ((["--tutorial-env"], TUTORIAL_ENV),
                            ([], dict(TUTORIAL_ENV, OKERA_AUTHSERVER_TUTORIAL_ENV="true"))):
        settings = parse_settings(switch, environ=environ)
        assert settings.tutorial_env
        assert (settings.port, settings.directory, settings.private_key, settings.algorithm, settings.group) == (
            5002, "/usr/share/myservice/tokens", "/etc/secrets/JWT_PRIVATE_KEY", "RSA256", "2000")


@pytest.mark.parametrize("environ, key", [
    ({"SECRET_DIR": "/etc/secrets"}, "/etc/secrets/JWT_PRIVATE_KEY"),
    ({"SECRET_DIR": "/etc/secrets/", "PRIVATE_KEY_FILE": "id_rsa"}, "/etc/secrets/id_rsa"),
    ({"PRIVATE_KEY_FILE": "/keys/id_rsa"}, "/keys/id_rsa"),
    ({"SECRET_DIR": "/s", "PRIVATE_KEY_FILE": "/abs/key"}, "/abs/key"),
])
def test_tutorial_key_is_secret_dir_and_key_file(environ, key):
    assert parse_settings(["--tutorial-env"], environ=environ).private_key == key


def test_precedence_is_flag_then_okera_authserver_then_tutorial_then_default():
    environ = dict(TUTORIAL_ENV, OKERA_AUTHSERVER_PORT="6000", OKERA_AUTHSERVER_PRIVATE_KEY="/own.pem",
                   OKERA_AUTHSERVER_TUTORIAL_ENV="yes")
    settings = parse_settings([], environ=environ)
    assert (settings.port, settings.private_key, settings.directory) == (6000, "/own.pem", "/usr/share/myservice/tokens")
    assert parse_settings(["-p", "7000", "-d", "/d"], environ=environ).port == 7000
    assert parse_settings(["-p", "7000", "-d", "/d"], environ=environ).directory == "/d"
    assert parse_settings([], environ=dict(environ, PORT="")).port == 6000
    assert parse_settings([], environ={"OKERA_AUTHSERVER_TUTORIAL_ENV": "true", "SECRET_DIR": "/s",
                                       "PORT": ""}).port == 5001  # empty counts as unset


def test_tutorial_mode_can_be_turned_off_in_the_environment():
    settings = parse_settings(["-k", "k"], environ=dict(TUTORIAL_ENV, OKERA_AUTHSERVER_TUTORIAL_ENV="false"))
    assert not settings.tutorial_env and settings.port == 5001


@pytest.mark.parametrize("environ, message", [
    ({"SECRET_DIR": "/s", "PORT": "http"}, "PORT 'http' is not a whole number"),
    ({"SECRET_DIR": "/s", "PORT": "70000"}, "port 70000 is not between 0 and 65535"),
    ({"TOKEN_DIR": "/t"}, "no private key given: use -k/--private-key PATH (or OKERA_AUTHSERVER_PRIVATE_KEY, "
                          "or SECRET_DIR with the key in $SECRET_DIR/JWT_PRIVATE_KEY)"),
])
def test_bad_tutorial_values_name_the_variable(environ, message):
    with pytest.raises(StartupError, match=re.escape(message)):
        parse_settings(["--tutorial-env"], environ=environ)


def test_every_tutorial_name_belongs_to_one_option():
    names = [name for option in OPTIONS for name in option.tutorial_env]
    assert sorted(names) == sorted(["PORT", "TOKEN_DIR", "SECRET_DIR", "PRIVATE_KEY_FILE", "ALGORITHM", "GID"])


# --- the key from AWS Secrets Manager (--private-key-secret-id) -------------------------------

def test_secret_id_replaces_the_key_file_and_has_its_variables():
    settings = parse_settings([], environ={"OKERA_AUTHSERVER_PRIVATE_KEY_SECRET_ID": "okera/jwt",
                                           "OKERA_AUTHSERVER_AWS_REGION": "eu-west-1",
                                           "OKERA_AUTHSERVER_AWS_ENDPOINT_URL": "https://vpce.example"})
    assert (settings.private_key, settings.private_key_secret_id) == ("", "okera/jwt")
    assert (settings.aws_region, settings.aws_endpoint_url) == ("eu-west-1", "https://vpce.example")


def test_key_file_and_secret_id_together_are_refused():
    with pytest.raises(StartupError, match="not both"):
        parse_settings(["-k", "key.pem", "--private-key-secret-id", "okera/jwt"], environ={})


def test_no_key_at_all_names_both_ways():
    with pytest.raises(StartupError, match="--private-key-secret-id"):
        parse_settings([], environ={})
