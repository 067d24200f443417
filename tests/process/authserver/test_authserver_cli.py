"""The command line and environment contract, and one-line start-up errors with exit code 2."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import stat
import subprocess
from importlib import metadata

import pytest

from okera_auth.module_utils.tokens import decode_unverified

CONTRACT_FLAGS = [
    "-p", "--port", "-d", "--directory", "-k", "--private-key", "-a", "--algorithm",
    "--disable-delete", "-g", "--group", "--private-key-passphrase-file", "--bind", "--ttl",
    "--delete-after", "--issuer", "--audience", "--claim", "--groups-file", "--unix-socket",
    "--allowed-uids", "--allowed-gids", "--no-tcp", "--file-mode", "--log-format", "--workers",
    "--tutorial-env", "--help-long", "--help-man", "--version",
]


def test_help_lists_every_flag(run_authserver):
    result = run_authserver("--help")
    assert result.returncode == 0
    for flag in CONTRACT_FLAGS:
        assert re.search(r"(^|[\s,])%s\b" % re.escape(flag), result.stdout), flag


def test_help_points_to_help_long_and_help_man_and_both_work(run_authserver):
    short = run_authserver("--help")
    assert "also try --help-long and --help-man" in " ".join(short.stdout.split())
    long_help = run_authserver("--help-long")
    assert long_help.returncode == 0 and long_help.stderr == ""
    for flag in CONTRACT_FLAGS:
        assert re.search(r"(^|[\s,])%s\b" % re.escape(flag), long_help.stdout), flag
    assert "OKERA_AUTHSERVER_MAX_CONNECTIONS" in long_help.stdout
    man = run_authserver("--help-man")
    assert man.returncode == 0 and man.stdout.startswith(".TH OKERA\\-AUTHSERVER 1 ")


@pytest.mark.skipif(not shutil.which("groff"), reason="needs groff to typeset the manual page")
def test_man_page_typesets_without_warnings(run_authserver, tmp_path):
    page = tmp_path / "okera-authserver.1"
    page.write_text(run_authserver("--help-man").stdout)
    typeset = subprocess.run(["groff", "-man", "-ww", "-Tutf8", str(page)], capture_output=True, text=True,
                             check=False, timeout=60)
    assert typeset.returncode == 0 and typeset.stderr == "", typeset.stderr
    text = re.sub(r".\x08", "", typeset.stdout)  # no overstrike (bold) in what is compared
    assert "okera-authserver - mint per-user JWTs" in text
    assert "OKERA_AUTHSERVER_TUTORIAL_ENV" in text


def test_version_is_the_package_version(run_authserver):
    result = run_authserver("--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "okera-authserver %s\n" % metadata.version("okera-auth"), "")


def _start_error(run_authserver, *args: str, env=None) -> str:
    result = run_authserver(*args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("okera-authserver: ")
    return result.stderr


def test_missing_key_option_exits_2(run_authserver):
    assert "no private key given" in _start_error(run_authserver, "-g", "0")


def test_missing_key_file_exits_2(run_authserver, tmp_path):
    message = _start_error(run_authserver, "-k", str(tmp_path / "nope.pem"), "-g", "0",
                           "-d", str(tmp_path / "t"))
    assert "does not exist" in message


def test_garbage_key_exits_2(run_authserver, tmp_path):
    key = tmp_path / "bad.pem"
    key.write_text("hello")
    message = _start_error(run_authserver, "-k", str(key), "-g", "0", "-d", str(tmp_path / "t"))
    assert "not PEM, OpenSSH" in message


def test_algorithm_that_does_not_fit_the_key_exits_2(run_authserver, pem_key, tmp_path):
    message = _start_error(run_authserver, "-k", str(pem_key), "-a", "ES256", "-g", "0",
                           "-d", str(tmp_path / "t"))
    assert "needs an EC P-256 key" in message


def test_unknown_group_exits_2(run_authserver, pem_key, tmp_path):
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "no-such-group-here",
                           "-d", str(tmp_path / "t"))
    assert "group 'no-such-group-here' does not exist" in message
    assert not (tmp_path / "t").exists()


def test_directory_that_is_a_file_exits_2(run_authserver, pem_key, tmp_path):
    (tmp_path / "t").write_text("")
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d", str(tmp_path / "t"))
    assert "is not a directory" in message


def test_directory_that_is_a_symlink_exits_2(run_authserver, pem_key, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "t").symlink_to(tmp_path / "real")
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d", str(tmp_path / "t"))
    assert "is not a directory" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory for another uid")
def test_directory_owned_by_someone_else_exits_2(run_authserver, pem_key, tmp_path):
    (tmp_path / "t").mkdir(mode=0o777)
    os.chown(tmp_path / "t", 4301, 4301)
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d", str(tmp_path / "t"))
    assert "belongs to uid 4301" in message


def test_reserved_claim_exits_2(run_authserver, pem_key, tmp_path):
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d", str(tmp_path / "t"),
                           "--claim", "sub=admin")
    assert "reserved claim" in message


def test_bad_groups_file_exits_2(run_authserver, pem_key, tmp_path):
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"janedoe": "admins"}))
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d", str(tmp_path / "t"),
                           "--groups-file", str(groups))
    assert "list of group names" in message


DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("args, env, message", [
    (["--claim", "x=" + DEEP], {}, "claim x is nested too deeply: JSON of at most 32 levels is read"),
    ([], {"OKERA_AUTHSERVER_CLAIMS": '{"x": %s}' % DEEP}, "OKERA_AUTHSERVER_CLAIMS is nested too deeply"),
    (["-g", "99999999999"], {}, "group 99999999999 is not a uid or gid: give a number from 0 to 4294967294"),
    (["-k", "FIFO"], {}, "private key file FIFO is not a regular file"),
    (["--groups-file", "FIFO"], {}, "groups file FIFO is not a regular file"),
    (["--private-key-passphrase-file", "FIFO"], {}, "passphrase file FIFO is not a regular file"),
])
def test_hostile_settings_exit_2_in_one_line_without_waiting(run_authserver, pem_key, tmp_path, args, env,
                                                             message):
    """Each of these was a traceback, a silently ignored group or, for a FIFO, a start that
    waited for ever (run_authserver's timeout fails the test)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = [str(fifo) if arg == "FIFO" else arg for arg in args]
    found = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d", str(tmp_path / "t"), *args, env=env)
    assert message.replace("FIFO", str(fifo)) in found
    assert not (tmp_path / "t").exists()


def test_key_parse_error_quotes_cryptography_tidily(run_authserver, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n")
    message = _start_error(run_authserver, "-k", str(key), "-g", "0", "-d", str(tmp_path / "t"))
    assert "the private key could not be parsed (" in message
    assert " )" not in message and "  " not in message


def test_port_in_use_exits_2(run_authserver, pem_key, tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0",
                               "-d", str(tmp_path / "t"), "-p", str(holder.getsockname()[1]))
    finally:
        holder.close()
    assert "cannot listen on 127.0.0.1 port" in message and "in use" in message


def test_encrypted_key_needs_its_passphrase(run_authserver, start_daemon, tmp_path):
    key = tmp_path / "enc"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "s3cret!",
                    "-f", str(key)], check=True)
    message = _start_error(run_authserver, "-k", str(key), "-g", "0", "-d", str(tmp_path / "t"))
    assert "encrypted" in message
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("wrong\n")
    message = _start_error(run_authserver, "-k", str(key), "-g", "0", "-d", str(tmp_path / "t"),
                           "--private-key-passphrase-file", str(passphrase))
    assert "check the passphrase" in message and "wrong" not in message
    passphrase.write_text("s3cret!\n")
    daemon = start_daemon("--private-key-passphrase-file", str(passphrase), key=key)
    assert daemon.get("/janedoe")[0] == 200
    assert "s3cret" not in daemon.log()


def test_base64_key_from_a_secret_works(start_daemon, pem_key, tmp_path):
    key = tmp_path / "key.b64"
    key.write_bytes(base64.b64encode(pem_key.read_bytes()))
    os.chmod(key, 0o600)
    assert start_daemon(key=key).get("/janedoe")[0] == 200


def test_key_readable_by_others_draws_a_warning(start_daemon, pem_key, tmp_path):
    key = tmp_path / "open.pem"
    key.write_bytes(pem_key.read_bytes())
    os.chmod(key, 0o644)
    daemon = start_daemon(key=key)
    assert re.search(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d warning: private key .*open\.pem is "
                     r"readable by group or others \(mode 0644\)", daemon.log(), re.M)


def test_private_key_with_0600_draws_no_warning(start_daemon):
    assert "warning" not in start_daemon().log()


def test_existing_directory_is_kept_and_checked(start_daemon, tmp_path):
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o770)
    os.chmod(directory, 0o770)
    start_daemon()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o770


def test_json_log_lines_carry_events_but_never_a_token(start_daemon):
    daemon = start_daemon("--log-format", "json", "--delete-after", "1")
    answer = daemon.token_json("janedoe")
    daemon.wait_for_log(re.compile('"event":"deleted"'))
    records = [json.loads(line) for line in daemon.log().splitlines()]
    events = [record["event"] for record in records]
    assert {"listening", "ready", "generated", "deleted"} <= set(events)
    generated = next(record for record in records if record["event"] == "generated")
    assert generated["path"] == answer["path"] and generated["user"] == "janedoe"
    assert generated["message"] == "Generated token: %s" % answer["path"]
    assert answer["token"] not in daemon.log()
    assert answer["token"].split(".")[2] not in daemon.log()


def test_environment_configures_a_running_server(start_daemon):
    daemon = start_daemon(env={"OKERA_AUTHSERVER_TTL": "2h", "OKERA_AUTHSERVER_ISSUER": "env-cluster"})
    claims = decode_unverified(daemon.token_json("janedoe")["token"]).claims
    assert claims["exp"] - claims["iat"] == 7200 and claims["iss"] == "env-cluster"
