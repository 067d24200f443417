"""Hardening of okera-authserver against local callers and a changing environment: endpoint
names in disguise, connection floods and descriptor exhaustion, a token directory swapped
under the running server, oversized input files, and an allow-list that TCP would bypass."""
from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import List

import pytest

from authserver_process import Daemon, raw_exchange, verify_with_library
from okera_auth.module_utils.tokens import decode_unverified


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def names_daemon(pem_key, tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("reserved"), pem_key, ["--disable-delete"])
    yield daemon
    daemon.kill()


# --- 5. endpoint names are never user names, whatever their spelling --------------------------

DISGUISED_ENDPOINTS = [
    "/%68ealthz", "/%68%65%61%6c%74%68%7a", "/healt%68z", "/%6Detrics", "/%6detrics",
    "/%2Fmetrics", "/%2fmetrics", "/%2F%2Fhealthz", "/.%2Fhealthz", "/%2E/metrics",
    "/.well-known%2Fjwks.json", "/.well-known%2fjwks.json", "/%2Ewell-known/jwks.json",
    "/.well-known/jwks%2Ejson", "/%2e%77ell-known%2Fjwks.json", "/HEALTHZ%00", "/%48ealthz",
]
OTHER_CASE_ENDPOINTS = ["/HEALTHZ", "/Healthz", "/METRICS", "/mEtRiCs", "/.WELL-KNOWN"]


@pytest.mark.parametrize("path", DISGUISED_ENDPOINTS + OTHER_CASE_ENDPOINTS)
def test_endpoint_names_in_any_spelling_mint_no_token(names_daemon, path):
    daemon = names_daemon
    answer = raw_exchange(daemon.port, b"GET " + path.encode("ascii") + b" HTTP/1.1\r\n"
                          b"Host: x\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 400, answer
    assert daemon.token_files() == [] and list(daemon.directory.iterdir()) == []
    assert "Generated token" not in daemon.log()


@pytest.mark.parametrize("path", ["/%68ealthz", "/HealthZ", "/%6Detrics"])
def test_endpoint_names_are_refused_in_json_too(names_daemon, path):
    status, _headers, body = names_daemon.get(path + "?format=json")
    assert status == 400 and "token" not in body


def test_endpoints_still_answer_their_plain_spelling(start_daemon):
    daemon = start_daemon()
    assert json.loads(daemon.get("/healthz")[2])["status"] == "ok"
    assert daemon.get("/metrics")[2].startswith("# HELP")
    assert "keys" in json.loads(daemon.get("/.well-known/jwks.json")[2])
    assert daemon.get("/.well-known/other")[0] == 404
    assert daemon.get("/healthz-team")[0] == 200  # a name that only starts like one is a user


# --- 6. connection floods and descriptor exhaustion -------------------------------------------

def _open_idle(port: int, count: int) -> List[socket.socket]:
    """``count`` connections that send nothing (connect() completes in the kernel's queue)."""
    sockets = []
    for _round in range(count):
        sockets.append(socket.create_connection(("127.0.0.1", port), timeout=30))
    return sockets


def _close_all(sockets: List[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def _token_within(daemon: Daemon, seconds: float) -> str:
    """A token path from a fresh connection, retrying refused or cut attempts up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, _headers, body = daemon.get("/janedoe")
            if status == 200:
                return body
            failure = "%d %s" % (status, body)
        except (OSError, ConnectionError) as error:  # closed to make room: ask again
            failure = repr(error)
        if time.monotonic() > deadline:
            raise AssertionError("no token within %s s: %s" % (seconds, failure))
        time.sleep(0.2)


def _no_traceback(daemon: Daemon) -> None:
    output = daemon.out_path.read_text() + daemon.log()
    assert "Traceback" not in output, output[-2000:]


def test_idle_connections_at_the_cap_do_not_lock_out_a_new_client(start_daemon):
    daemon = start_daemon("--max-connections", "8")
    idle = _open_idle(daemon.port, 8)
    kept_alive = daemon.connection()
    try:
        kept_alive.request("GET", "/keepalive")  # one more idle connection, between requests
        assert kept_alive.getresponse().read()
        idle += _open_idle(daemon.port, 8)  # and then twice the cap of connections saying nothing
        status, _headers, path = daemon.get("/janedoe")  # first try: no waiting for timeouts
        assert status == 200, path
        assert Path(path).parent == daemon.directory and Path(path).exists()
    finally:
        kept_alive.close()
        _close_all(idle)
    metrics = daemon.get("/metrics")[2]
    assert int(re.search(r"^okera_authserver_connections_evicted_total (\d+)$", metrics,
                         re.M).group(1)) >= 8
    _no_traceback(daemon)


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def test_low_open_files_limit_lowers_the_cap_and_a_flood_does_not_stop_service(start_daemon):
    daemon = start_daemon(preexec_fn=_limit_descriptors)
    assert re.search(r"^\S+ \S+ warning: The open-files limit \(64\) cannot hold --max-connections 512",
                     daemon.log(), re.M)
    flood = _open_idle(daemon.port, 200)
    try:
        path = _token_within(daemon, 60)  # while the flood still holds its connections
        assert Path(path).exists()
    finally:
        _close_all(flood)
    assert _token_within(daemon, 30)
    lines = daemon.log().splitlines()
    assert len(lines) < 40, lines  # the flood itself is no line per connection
    _no_traceback(daemon)


def test_out_of_descriptors_in_accept_is_one_line_and_the_server_recovers(start_daemon):
    daemon = start_daemon()
    began = time.monotonic()
    # Lower the limit once the server runs: its cap (512) no longer fits, accept() meets EMFILE.
    resource.prlimit(daemon.process.pid, resource.RLIMIT_NOFILE, (64, 64))
    flood = _open_idle(daemon.port, 200)
    try:
        daemon.wait_for_log(re.compile(r"Cannot accept connections: Too many open files \(EMFILE\)"),
                            timeout=30)
        time.sleep(2.5)  # a few more back-off rounds while the flood holds on
    finally:
        _close_all(flood)
    assert Path(_token_within(daemon, 60)).exists()
    log = daemon.log()
    accept_lines = [line for line in log.splitlines() if "Cannot accept connections" in line]
    # One line per 5 s at most (asyncio reports each of up to 1024 failed accepts per round).
    assert 1 <= len(accept_lines) <= 2 + (time.monotonic() - began) / 5, accept_lines
    assert len(log.splitlines()) < 40
    assert "okera_authserver_accept_failures_total 0" not in daemon.get("/metrics")[2]
    _no_traceback(daemon)


# --- 7. the token directory swapped under the running server ----------------------------------

def test_directory_swapped_for_a_symlink_gets_no_token(start_daemon, tmp_path):
    daemon = start_daemon("--disable-delete")
    assert daemon.get("/before")[0] == 200
    moved = tmp_path / "tokens.moved"
    target = tmp_path / "attacker"
    target.mkdir(mode=0o777)
    os.chmod(target, 0o777)
    daemon.directory.rename(moved)
    daemon.directory.symlink_to(target)
    status, _headers, body = daemon.get("/janedoe")
    assert status == 503 and "replaced by a symlink" in body and "no token written" in body
    assert list(target.iterdir()) == []
    assert [p.name.split(".")[0] for p in moved.iterdir()] == ["before"]
    status, _headers, body = daemon.get("/healthz")
    health = json.loads(body)
    assert status == 503 and health["status"] == "unavailable"
    assert "replaced by a symlink" in health["reason"]
    assert daemon.get("/johndoe")[0] == 503
    log = daemon.log()
    assert log.count("Token directory changed") == 1  # once, not per request
    # Put back, the same directory serves again.
    daemon.directory.unlink()
    moved.rename(daemon.directory)
    status, _headers, body = daemon.get("/janedoe")
    assert status == 200 and Path(body).parent == daemon.directory and Path(body).exists()
    assert "is usable again" in daemon.log()
    assert json.loads(daemon.get("/healthz")[2])["status"] == "ok"


def test_directory_replaced_by_a_world_writable_one_gets_no_token(start_daemon, tmp_path):
    daemon = start_daemon("--disable-delete")
    daemon.directory.rename(tmp_path / "tokens.moved")
    daemon.directory.mkdir()
    os.chmod(daemon.directory, 0o777)
    status, _headers, body = daemon.get("/janedoe")
    assert status == 503 and "replaced by another directory" in body
    assert list(daemon.directory.iterdir()) == []
    assert "replaced by another directory" in json.loads(daemon.get("/healthz")[2])["reason"]


def test_directory_made_world_writable_gets_no_token(start_daemon):
    daemon = start_daemon("--disable-delete")
    os.chmod(daemon.directory, 0o777)
    status, _headers, body = daemon.get("/janedoe")
    assert status == 503 and "writable by everyone" in body
    assert daemon.token_files() == []
    os.chmod(daemon.directory, 0o750)
    assert daemon.get("/janedoe")[0] == 200


def test_owed_deletions_go_to_the_directory_written(start_daemon, tmp_path):
    daemon = start_daemon("--delete-after", "1")
    path = Path(daemon.get("/janedoe")[2])
    moved = tmp_path / "tokens.moved"
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / path.name).write_text("not the server's")
    daemon.directory.rename(moved)
    daemon.directory.symlink_to(decoy)
    daemon.wait_for_log(re.compile("Deleted token: %s" % re.escape(str(path))))
    assert (decoy / path.name).read_text() == "not the server's"
    assert not (moved / path.name).exists()


# --- 8. oversized key, passphrase and groups files ----------------------------------------------

def _start_error(run_authserver, *args: str) -> str:
    result = run_authserver(*args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def big_file(tmp_path) -> Path:
    path = tmp_path / "big"
    with open(path, "wb") as handle:
        handle.write(b"-----BEGIN RSA PRIVATE KEY-----\n" + b"A" * (2 * 1024 * 1024))
    return path


# A device is refused before a byte is read; a regular file once it passes the bound.
_REFUSAL = {"/dev/zero": "is not a regular file", "big": "is larger than 1 MiB"}


@pytest.mark.parametrize("source", ["/dev/zero", "big"])
def test_oversized_key_file_is_one_line_exit_2(run_authserver, tmp_path, big_file, source):
    key = "/dev/zero" if source == "/dev/zero" else str(big_file)
    message = _start_error(run_authserver, "-k", key, "-g", "0", "-d", str(tmp_path / "t"))
    assert "private key file %s %s" % (key, _REFUSAL[source]) in message
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("source", ["/dev/zero", "big"])
def test_oversized_passphrase_and_groups_files_are_one_line_exit_2(
        run_authserver, pem_key, tmp_path, big_file, source):
    path = "/dev/zero" if source == "/dev/zero" else str(big_file)
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d",
                           str(tmp_path / "t"), "--private-key-passphrase-file", path)
    assert "passphrase file %s %s" % (path, _REFUSAL[source]) in message
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d",
                           str(tmp_path / "t"), "--groups-file", path)
    assert "groups file %s %s" % (path, _REFUSAL[source]) in message


def test_deeply_nested_groups_file_is_one_line_exit_2(run_authserver, pem_key, tmp_path):
    groups = tmp_path / "groups.json"
    groups.write_text("[" * 200000 + "]" * 200000)
    message = _start_error(run_authserver, "-k", str(pem_key), "-g", "0", "-d",
                           str(tmp_path / "t"), "--groups-file", str(groups))
    assert "groups file %s" % groups in message


@pytest.mark.parametrize("source", ["/dev/zero", "big"])
def test_sighup_with_an_oversized_key_keeps_the_old_one(start_daemon, pem_key, tmp_path, big_file,
                                                        source):
    link = tmp_path / "key.pem"
    shutil.copy(pem_key, tmp_path / "real.pem")
    os.chmod(tmp_path / "real.pem", 0o600)
    link.symlink_to(tmp_path / "real.pem")
    daemon = start_daemon(key=link)
    kid = decode_unverified(daemon.token_json("janedoe")["token"]).header["kid"]
    link.unlink()
    link.symlink_to("/dev/zero" if source == "/dev/zero" else big_file)
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_for_log(re.compile(r"error: Reload failed.*")).group(0)
    assert _REFUSAL[source] in line and "the previous key stays in use" in line
    token = daemon.token_json("janedoe")["token"]
    assert decode_unverified(token).header["kid"] == kid
    assert verify_with_library(token, pem_key).valid
    assert daemon.process.poll() is None
    _no_traceback(daemon)


def test_help_lists_the_unchecked_tcp_switch(run_authserver):
    result = run_authserver("--help")
    assert result.returncode == 0 and "--allow-unchecked-tcp" in result.stdout
