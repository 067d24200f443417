"""init_sandbox writes a sandbox whole or not at all."""
from __future__ import annotations

import os

import pytest

from okera_auth.sandbox import statedir
from okera_auth.sandbox.errors import SandboxError
from okera_auth.sandbox.statedir import StateDir, init_sandbox


def _failing_certificates(ca_cert: str, cert: str, key: str) -> None:
    with open(ca_cert, "w", encoding="ascii") as handle:  # half written, then the disk is full
        handle.write("-----BEGIN")
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("existing", [False, True])
def test_a_failure_while_writing_removes_what_init_wrote_and_nothing_else(monkeypatch, tmp_path, existing):
    root = tmp_path / "state"
    if existing:
        root.mkdir()
        (root / "notes.txt").write_text("mine")
    monkeypatch.setattr(statedir, "write_certificates", _failing_certificates)
    with pytest.raises(OSError, match="No space left"):
        init_sandbox(StateDir(str(root)))
    assert (sorted(os.listdir(root)) == ["notes.txt"]) if existing else not root.exists()


def test_a_refused_namespace_writes_nothing(tmp_path):
    root = tmp_path / "state"
    with pytest.raises(SandboxError, match='Namespace "Bad_NS!" is invalid'):
        init_sandbox(StateDir(str(root)), namespace="Bad_NS!")
    assert not root.exists()


def test_a_sandbox_written_whole_is_one(tmp_path):
    state = StateDir(str(tmp_path / "state"))
    settings = init_sandbox(state, namespace="okera", tls=False)
    assert state.initialized() and state.settings() == settings
