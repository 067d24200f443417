"""--processes N: every worker answers, SIGHUP reloads them all, SIGTERM drains them all and
leaves no file, the metrics add up, and a worker that dies is replaced and its files deleted."""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket as socket_module
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from authserver_process import verify_with_library
from okera_auth.authserver.http import Limits
from okera_auth.module_utils.tokens import decode_unverified

PER_PROCESS = re.compile(r'^okera_authserver_process_tokens_issued_total\{process="(\d+)"\} (\d+)$',
                         re.MULTILINE)


def _workers(daemon) -> List[int]:
    pid = daemon.process.pid
    return [int(child) for child in
            Path("/proc/%d/task/%d/children" % (pid, pid)).read_text().split()]


def _per_process(daemon) -> Dict[int, int]:
    return {int(index): int(count) for index, count in PER_PROCESS.findall(daemon.get("/metrics")[2])}


def _tokens(daemon, count: int) -> List[dict]:
    """``count`` tokens, each on a new connection (SO_REUSEPORT spreads connections by their
    source port, so new connections reach every worker)."""
    return [daemon.token_json("janedoe") for _round in range(count)]


def test_every_worker_answers_and_the_metrics_add_up(start_daemon):
    daemon = start_daemon("--processes", "3", "--delete-after", "10m")
    assert len(_workers(daemon)) == 3
    issued = _tokens(daemon, 90)
    assert len({entry["path"] for entry in issued}) == 90
    counts = _per_process(daemon)
    assert sorted(counts) == [0, 1, 2] and all(count > 0 for count in counts.values()), counts
    assert sum(counts.values()) == daemon.tokens_issued() == 90
    body = daemon.get("/metrics")[2]
    assert "okera_authserver_processes 3" in body
    assert "okera_authserver_request_duration_seconds_count " in body
    assert int(re.search(r"^okera_authserver_request_duration_seconds_count (\d+)$", body,
                         re.MULTILINE).group(1)) >= 90
    daemon.get("/bad..name")
    assert 'okera_authserver_errors_total{kind="bad_user"} 1' in daemon.get("/metrics")[2]
    log = daemon.log()
    assert log.count("Listening on http://") == 1 and log.count("Signing with") == 1
    assert "3 worker processes" in log
    assert len(daemon.token_files()) == 90
    health = json.loads(daemon.get("/healthz")[2])
    assert health["status"] == "ok"


def test_sighup_reloads_every_worker_once(start_daemon, pem_key, second_pem_key, tmp_path):
    key = tmp_path / "key.pem"
    shutil.copy(pem_key, key)
    daemon = start_daemon("--processes", "3", key=key)
    old_kid = decode_unverified(daemon.token_json("janedoe")["token"]).header["kid"]
    replacement = tmp_path / "key.new"
    shutil.copy(second_pem_key, replacement)
    os.replace(replacement, key)
    daemon.signal(signal.SIGHUP)
    new_kid = daemon.wait_for_log(re.compile(r"Reloaded key kid=(\S+)")).group(1)
    assert new_kid != old_kid
    tokens = [entry["token"] for entry in _tokens(daemon, 60)]
    assert {decode_unverified(token).header["kid"] for token in tokens} == {new_kid}
    assert all(count > 0 for count in _per_process(daemon).values())
    assert verify_with_library(tokens[-1], second_pem_key).valid
    assert daemon.log().count("Reloaded key") == 1
    body = daemon.get("/metrics")[2]
    assert "okera_authserver_key_reloads_total 1" in body
    assert 'kid="%s"' % new_kid in body
    jwks = json.loads(daemon.get("/.well-known/jwks.json")[2])
    assert [entry["kid"] for entry in jwks["keys"]] == [new_kid, old_kid]


def test_a_key_that_does_not_load_is_one_line_and_every_worker_keeps_the_old(
        start_daemon, pem_key, tmp_path):
    key = tmp_path / "key.pem"
    shutil.copy(pem_key, key)
    daemon = start_daemon("--processes", "2", key=key)
    old_kid = decode_unverified(daemon.token_json("janedoe")["token"]).header["kid"]
    key.write_text("not a key\n")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log(re.compile(r"Reload failed, the previous key stays in use"))
    tokens = [entry["token"] for entry in _tokens(daemon, 20)]
    assert {decode_unverified(token).header["kid"] for token in tokens} == {old_kid}
    assert daemon.log().count("Reload failed") == 1
    assert "okera_authserver_key_reload_failures_total 1" in daemon.get("/metrics")[2]


def test_sigterm_drains_every_worker_and_leaves_no_file(start_daemon):
    daemon = start_daemon("--processes", "3", "--delete-after", "10m")
    workers = _workers(daemon)
    _tokens(daemon, 30)
    assert len(daemon.token_files()) == 30
    assert daemon.stop() == 0
    assert daemon.token_files() == []
    log = daemon.log()
    assert log.count("Stopping: finishing requests in flight") == 1
    assert log.count("Stopped") == 1 and log.count("Deleted token:") == 30
    for pid in workers:
        assert not Path("/proc/%d" % pid).exists() or "Z" in \
            Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]


def test_a_dead_worker_is_replaced_and_its_files_deleted(start_daemon):
    daemon = start_daemon("--processes", "2", "--delete-after", "2s")
    victim = _workers(daemon)[0]
    _tokens(daemon, 20)
    os.kill(victim, signal.SIGKILL)
    daemon.wait_for_log(re.compile(r"Worker process \d \(pid %d\) ended \(signal 9\): starting "
                                   r"another" % victim))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(_workers(daemon)) < 2:
        time.sleep(0.05)
    assert len(_workers(daemon)) == 2 and victim not in _workers(daemon)
    assert len({entry["path"] for entry in _tokens(daemon, 10)}) == 10
    deadline = time.monotonic() + 15  # 2 s window, then the sweep one second later
    while time.monotonic() < deadline and daemon.token_files():
        time.sleep(0.2)
    assert daemon.token_files() == []
    assert daemon.stop() == 0


def test_unix_socket_is_shared_by_the_workers(start_daemon, tmp_path):
    socket_path = tmp_path / "authserver.sock"
    daemon = start_daemon("--processes", "2", "--unix-socket", str(socket_path))

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
            self.sock.connect(str(socket_path))

    for _round in range(5):
        connection = UnixConnection("localhost")
        connection.request("GET", "/janedoe")
        response = connection.getresponse()
        assert response.status == 200 and Path(response.read().decode()).exists()
        connection.close()
    assert oct(socket_path.stat().st_mode & 0o777) == oct(0o660)
    assert daemon.stop() == 0
    assert not socket_path.exists()


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_process_count_is_refused(run_authserver, pem_key, value):
    result = run_authserver("-k", str(pem_key), "--processes", value)
    assert result.returncode == 2 and "processes" in result.stderr


def _children(pid: int) -> List[int]:
    try:
        return [int(child) for child in Path("/proc/%d/task/%d/children" % (pid, pid)).read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    try:
        return Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("forked", [1, 2, 3])
def test_sigterm_while_workers_are_forked_stops_the_supervisor_and_them(pem_key, tmp_path, forked):
    """A SIGTERM that finds a worker just forked, before it has handlers of its own, must stop
    it too: the supervisor's handler in the worker would swallow it, and the supervisor would
    wait for the drain and the stop grace (15 s) before it SIGKILLs that worker."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("OKERA_AUTHSERVER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "okera_auth.authserver", "-k", str(pem_key), "-p", "0", "-d", str(tmp_path / "tokens"),
         "-g", str(os.getegid()), "--processes", "4"], env=environment, stderr=subprocess.PIPE, text=True)
    workers: List[int] = []
    try:
        while len(_children(process.pid)) < forked and process.poll() is None:
            pass  # no sleep: the signal is to land while the next workers are forked
        workers = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        # Well inside the drain's 10 s: a stop that waited for the stop grace is too late.
        assert process.wait(timeout=Limits().drain_timeout) == 0, process.stderr.read()
        assert not [pid for pid in workers if _running(pid)]
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
