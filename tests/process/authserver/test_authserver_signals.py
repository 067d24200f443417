"""Signals: SIGHUP reloads the key (and groups) without a failed request; SIGTERM drains."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from authserver_process import ssh_keygen, verify_with_library, verify_with_openssl
from okera_auth.module_utils.tokens import decode_unverified


@pytest.fixture(scope="module")
def slow_key(tmp_path_factory) -> Path:
    """RSA-4096 signs about 6x slower than 2048: requests stay in flight long enough to see."""
    return ssh_keygen(tmp_path_factory.mktemp("slow_key"), "-b", "4096", "-t", "rsa", "-m", "PEM")


def _load(daemon, stop: threading.Event, results: list, errors: list) -> None:
    connection = daemon.connection(timeout=30)
    try:
        while not stop.is_set():
            connection.request("GET", "/janedoe?format=json")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                errors.append((response.status, body))
            else:
                results.append(json.loads(body)["token"])
    except Exception as error:  # noqa: BLE001 - a failed request is what this test looks for
        errors.append(repr(error))
    finally:
        connection.close()


@pytest.mark.slow
def test_sighup_under_load_rotates_the_key_with_zero_failures(start_daemon, pem_key,
                                                              second_pem_key, tmp_path):
    key = tmp_path / "key.pem"
    shutil.copy(pem_key, key)
    daemon = start_daemon(key=key)
    old_kid = decode_unverified(daemon.token_json("janedoe")["token"]).header["kid"]
    stop, results, errors = threading.Event(), [], []
    clients = [threading.Thread(target=_load, args=(daemon, stop, results, errors))
               for _round in range(8)]
    for client in clients:
        client.start()
    time.sleep(1.0)
    replacement = tmp_path / "key.new"
    shutil.copy(second_pem_key, replacement)
    os.replace(replacement, key)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log(re.compile(r"Reloaded key kid=(\S+)"))
    before = len(results)
    time.sleep(1.0)
    stop.set()
    for client in clients:
        client.join(30)
    assert errors == []
    assert len(results) > before > 0
    kids = {}
    for token in results:
        kids.setdefault(decode_unverified(token).header["kid"], []).append(token)
    new_kid = re.search(r"Reloaded key kid=(\S+)", daemon.log()).group(1)
    assert set(kids) == {old_kid, new_kid} and old_kid != new_kid
    assert all(verify_with_library(token, pem_key).valid for token in kids[old_kid][-5:])
    assert all(verify_with_library(token, second_pem_key).valid for token in kids[new_kid][-5:])
    assert verify_with_openssl(kids[new_kid][-1], second_pem_key)
    assert not verify_with_library(kids[new_kid][-1], pem_key).valid
    jwks = json.loads(daemon.get("/.well-known/jwks.json")[2])
    assert [entry["kid"] for entry in jwks["keys"]] == [new_kid, old_kid]


def test_sighup_with_a_broken_key_keeps_the_old_one(start_daemon, pem_key, tmp_path):
    key = tmp_path / "key.pem"
    shutil.copy(pem_key, key)
    daemon = start_daemon(key=key)
    kid = decode_unverified(daemon.token_json("janedoe")["token"]).header["kid"]
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n")
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_for_log(re.compile(r"error: Reload failed.*")).group(0)
    assert "the previous key stays in use" in line and "BEGIN" not in line
    token = daemon.token_json("janedoe")["token"]
    assert decode_unverified(token).header["kid"] == kid
    assert verify_with_library(token, pem_key).valid
    assert "okera_authserver_key_reload_failures_total 1" in daemon.get("/metrics")[2]


@pytest.mark.parametrize("swapped", ["key", "groups"])
def test_sighup_with_a_fifo_for_a_file_keeps_the_old_key_and_sigterm_still_stops(
        start_daemon, pem_key, tmp_path, swapped):
    """A FIFO without a writer blocked the reload in open() for ever, and the stuck thread
    then kept the stopped server from exiting."""
    key, groups = tmp_path / "key.pem", tmp_path / "groups.json"
    shutil.copy(pem_key, key)
    groups.write_text(json.dumps({"janedoe": ["analysts"]}))
    daemon = start_daemon("--groups-file", str(groups), key=key)
    kid = decode_unverified(daemon.token_json("janedoe")["token"]).header["kid"]
    swapped_path = key if swapped == "key" else groups
    swapped_path.unlink()
    os.mkfifo(swapped_path)
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_for_log(re.compile(r"error: Reload failed.*")).group(0)
    assert "the previous key stays in use: %s file %s is not a regular file" % (
        "private key" if swapped == "key" else "groups", swapped_path) in line
    claims = decode_unverified(daemon.token_json("janedoe")["token"])
    assert claims.header["kid"] == kid and claims.claims["groups"] == ["analysts"]
    assert daemon.stop() == 0
    assert daemon.log().rstrip().endswith("Stopped")


def test_sighup_reloads_the_groups_file(start_daemon, tmp_path):
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"janedoe": ["analysts"]}))
    daemon = start_daemon("--groups-file", str(groups))
    assert decode_unverified(daemon.token_json("janedoe")["token"]).claims["groups"] == ["analysts"]
    groups.write_text(json.dumps({"janedoe": ["admins", "analysts"]}))
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log(re.compile("Reloaded key"))
    claims = decode_unverified(daemon.token_json("janedoe")["token"]).claims
    assert claims["groups"] == ["admins", "analysts"]


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight_and_deletes_owed_files(start_daemon, slow_key):
    daemon = start_daemon("--workers", "1", "--delete-after", "10m", key=slow_key)
    assert daemon.get("/warmup")[0] == 200
    sockets = [socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
               for _round in range(30)]
    for number, sock in enumerate(sockets):
        sock.sendall(b"GET /user%d HTTP/1.1\r\nHost: x\r\n\r\n" % number)
    while True:  # until the server has read all 30 requests (signed, or being signed)
        metrics = daemon.get("/metrics")[2]
        issued, in_progress = (int(re.search(r"^okera_authserver_tokens_%s (\d+)$" % name,
                                             metrics, re.M).group(1))
                               for name in ("issued_total", "in_progress"))
        if issued - 1 + in_progress == 30:
            break
    daemon.signal(signal.SIGTERM)
    assert in_progress > 0  # requests were still being signed when SIGTERM came
    answers = []
    for sock in sockets:
        chunks = b""
        while b"\r\n\r\n" not in chunks or not chunks.split(b"\r\n\r\n", 1)[1]:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks += chunk
        answers.append(chunks)
        sock.close()
    assert daemon.process.wait(30) == 0
    assert all(answer.startswith(b"HTTP/1.1 200 OK") for answer in answers), answers
    paths = [answer.split(b"\r\n\r\n", 1)[1].decode() for answer in answers]
    assert len(set(paths)) == 30
    assert daemon.token_files() == []
    log = daemon.log()
    for path in paths:
        assert "Deleted token: %s" % path in log
    assert log.rstrip().endswith("Stopped")


def test_sigterm_when_idle_exits_zero_at_once(start_daemon):
    daemon = start_daemon()
    idle = daemon.connection()
    idle.request("GET", "/janedoe")
    assert idle.getresponse().read()  # a kept-alive, idle connection does not hold the stop
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 5
    assert daemon.log().rstrip().endswith("Stopped") and daemon.token_files() == []
    idle.close()


def test_systemd_is_told_ready_reloading_and_stopping(start_daemon, tmp_path):
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(15)
    try:
        daemon = start_daemon(env={"NOTIFY_SOCKET": address})
        assert listener.recv(64) == b"READY=1"
        daemon.signal(signal.SIGHUP)
        assert [listener.recv(64), listener.recv(64)] == [b"RELOADING=1", b"READY=1"]
        daemon.signal(signal.SIGTERM)
        assert listener.recv(64) == b"STOPPING=1"
        assert daemon.process.wait(20) == 0
    finally:
        listener.close()
