"""User names over HTTP: whatever path a client sends, no file is written outside the directory."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authserver_process import Daemon, raw_exchange
from user_name_paths import PATHS


@pytest.fixture(scope="module")
def shared_daemon(pem_key, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("names")
    daemon = Daemon(workdir, pem_key, ["--disable-delete"])
    yield daemon
    daemon.kill()


@given(st.one_of(PATHS, st.binary(max_size=60).map(lambda raw: raw.decode("latin-1"))))
@settings(max_examples=250, deadline=None)
def test_over_http_any_path_answers_cleanly_and_writes_only_inside(shared_daemon, raw):
    daemon = shared_daemon
    target = "/" + quote(raw, safe="/%.@-_~") if raw.isprintable() else "/" + quote(raw, safe="")
    answer = raw_exchange(daemon.port, b"GET " + target.encode("ascii") + b" HTTP/1.1\r\n"
                          b"Host: x\r\nConnection: close\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    assert status in (200, 400, 404)
    if status == 200:
        path = Path(answer.split(b"\r\n\r\n", 1)[1].decode())
        assert path.parent == daemon.directory and path.exists()
    assert sorted(p.name for p in daemon.workdir.iterdir()) == ["daemon.log", "daemon.out", "tokens"]
    assert all(p.parent == daemon.directory for p in daemon.directory.rglob("*"))
