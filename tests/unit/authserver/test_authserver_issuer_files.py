"""The issuer's files without a server: unique names, no overwrite, atomic writes, timed deletion."""
from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from okera_auth.authserver.issuer import ClaimRules, NameClock, PendingDeletions, TokenIssuer
from okera_auth.module_utils.errors import FileExistsWriteError
from okera_auth.module_utils.files import write_file_atomic
from okera_auth.module_utils.tokens import Signer


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_two_requests_in_the_same_nanosecond_get_two_files(tmp_path, rsa_private_key):
    issuer = TokenIssuer(str(tmp_path), Signer(rsa_private_key), ClaimRules(ttl=60))
    first = issuer.issue("janedoe", 1000)
    second = issuer.issue("janedoe", 1000)
    assert first.path != second.path
    assert Path(first.path).read_text() == first.token
    assert Path(second.path).read_text() == second.token


def test_an_existing_file_is_never_overwritten(tmp_path, rsa_private_key):
    taken = tmp_path / "janedoe.5.token"
    taken.write_text("someone else's")
    issued = TokenIssuer(str(tmp_path), Signer(rsa_private_key), ClaimRules(ttl=60)).issue(
        "janedoe", 5)
    assert taken.read_text() == "someone else's"
    assert issued.path == str(tmp_path / "janedoe.6.token")


def test_name_clock_never_repeats():
    clock = NameClock()
    stamps = [clock.next() for _round in range(10000)]
    assert len(set(stamps)) == len(stamps) and stamps == sorted(stamps)


def test_write_without_replace_refuses_an_existing_target(tmp_path):
    target = tmp_path / "file"
    write_file_atomic(str(target), b"first", mode=0o640, replace=False)
    assert target.read_bytes() == b"first" and _mode(target) == 0o640
    with pytest.raises(FileExistsWriteError, match="already exists"):
        write_file_atomic(str(target), b"second", replace=False)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_pending_deletions_fall_due_in_order_and_all_go_at_stop(tmp_path):
    files = [tmp_path / ("user%d.%d.token" % (n, n)) for n in range(4)]
    for path in files:
        path.write_text("t")
    deleted = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pending = PendingDeletions(loop, 0.2, lambda path, failure: deleted.append((path, failure)))
        pending.schedule(str(files[0]))
        await asyncio.sleep(0.1)
        pending.schedule(str(files[1]))
        pending.schedule(str(files[2]))
        assert len(pending) == 3
        await asyncio.sleep(0.17)  # files[0] is due (0.2 s + batching), files[1:] not yet
        assert deleted == [(str(files[0]), None)] and len(pending) == 2
        await asyncio.sleep(0.2)
        assert [path for path, _failure in deleted] == [str(f) for f in files[:3]]
        pending.schedule(str(files[3]))
        files[3].unlink()  # a client removed it first: not a failure
        pending.delete_all_now()
        assert len(pending) == 0 and deleted[-1] == (str(files[3]), None)

    asyncio.run(scenario())
    assert not any(path.exists() for path in files)


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_write_leaves_no_temp_file_and_no_target(tmp_path, monkeypatch, interruption):
    def interrupted(_descriptor, _data):
        raise interruption()

    monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(interruption):
        write_file_atomic(str(tmp_path / "file"), b"token")
    monkeypatch.undo()
    assert not list(tmp_path.iterdir())
