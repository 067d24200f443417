"""Token files: owner, group, mode, names, deletion, stale files after a crash, a full disk."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest


OTHER_GID = 4242
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mount, setuid)")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@needs_root
def test_token_file_is_0640_owned_by_the_group(start_daemon):
    daemon = start_daemon("-g", str(OTHER_GID))
    status, _headers, body = daemon.get("/janedoe")
    path = Path(body)
    assert status == 200
    info = path.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, OTHER_GID)
    directory = daemon.directory.stat()
    assert (stat.S_IMODE(directory.st_mode), directory.st_gid) == (0o750, OTHER_GID)


def test_file_mode_option_is_octal(start_daemon):
    daemon = start_daemon("--file-mode", "0600")
    assert _mode(Path(daemon.get("/janedoe")[2])) == 0o600


def test_file_mode_from_environment_ignores_the_umask(start_daemon):
    old = os.umask(0o077)
    try:
        daemon = start_daemon(env={"OKERA_AUTHSERVER_FILE_MODE": "440"})
    finally:
        os.umask(old)
    assert _mode(Path(daemon.get("/janedoe")[2])) == 0o440


def test_file_is_deleted_after_the_delay_and_logged(start_daemon):
    daemon = start_daemon("--delete-after", "1")
    path = Path(daemon.get("/janedoe")[2])
    written = time.monotonic()
    assert path.exists()
    while path.exists() and time.monotonic() - written < 5:
        time.sleep(0.05)
    elapsed = time.monotonic() - written
    assert not path.exists()
    assert 0.8 <= elapsed < 3
    daemon.wait_for_log(re.compile("Deleted token: %s" % re.escape(str(path))))


def test_disable_delete_keeps_files(start_daemon):
    daemon = start_daemon("--disable-delete", "--delete-after", "1")
    path = Path(daemon.get("/janedoe")[2])
    time.sleep(1.6)
    assert path.exists() and "Deleted token" not in daemon.log()
    assert daemon.stop() == 0
    assert path.exists()  # not owed: kept even at shutdown


def test_restart_after_kill_9_removes_stale_files(start_daemon, tmp_path):
    first = start_daemon("--delete-after", "60s")
    paths = [Path(first.get("/user%d" % n)[2]) for n in range(3)]
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    temp = first.directory / ".janedoe.1795420367944491937.token.0123456789ab.tmp"
    temp.write_text("partial")
    unrelated = first.directory / "notes.txt"
    unrelated.write_text("not ours")
    assert all(path.exists() for path in paths)
    second = start_daemon("--delete-after", "60s")
    assert not any(path.exists() for path in paths) and not temp.exists()
    assert unrelated.exists()
    for path in paths + [temp]:
        assert "Removed stale file: %s" % path in second.log()


def test_restart_with_disable_delete_keeps_tokens_but_removes_temp_files(start_daemon):
    first = start_daemon("--disable-delete")
    path = Path(first.get("/janedoe")[2])
    first.kill()
    temp = first.directory / ".janedoe.1.token.0123456789ab.tmp"
    temp.write_text("partial")
    start_daemon("--disable-delete")
    assert path.exists() and not temp.exists()


@needs_root
def test_full_disk_is_500_and_leaves_no_file(start_daemon, tmp_path):
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)], check=True)
    try:
        tokens = mountpoint / "tokens"
        daemon = start_daemon("-d", str(tokens))
        filler = mountpoint / "filler"
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(descriptor, b"x" * 4096)
        except OSError:
            pass
        finally:
            os.close(descriptor)
        status, _headers, body = daemon.get("/janedoe")
        assert status == 500 and "No space left on device" in body
        assert list(tokens.iterdir()) == []
        assert "Could not issue a token for janedoe" in daemon.log()
        filler.unlink()
        status, _headers, body = daemon.get("/janedoe")
        assert status == 200 and Path(body).parent == tokens
        daemon.stop()
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


@contextlib.contextmanager
def _owned_workdir(pem_key: Path, uid: int, gid: int) -> Iterator[Tuple[Path, Path]]:
    """A temp directory holding a 0600 copy of the key, both owned by uid:gid; removed after."""
    workdir = Path(tempfile.mkdtemp(prefix="authserver-user-"))
    try:
        os.chown(workdir, uid, gid)
        key = workdir / "key.pem"
        key.write_bytes(pem_key.read_bytes())
        os.chown(key, uid, gid)
        os.chmod(key, 0o600)
        yield workdir, key
    finally:
        subprocess.run(["rm", "-rf", str(workdir)], check=True)


@needs_root
def test_unprivileged_member_of_the_group_can_run_it(start_daemon, pem_key):
    uid, gid = 4101, 4101
    with _owned_workdir(pem_key, uid, gid) as (workdir, key):
        daemon = start_daemon("-g", str(OTHER_GID), key=key, workdir=workdir,
                              run_as=(uid, gid, [OTHER_GID]))
        path = Path(daemon.get("/janedoe")[2])
        info = path.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (uid, OTHER_GID, 0o640)
        assert daemon.stop() == 0


@needs_root
def test_unprivileged_user_outside_the_group_is_refused_at_start(start_daemon, pem_key):
    uid, gid = 4102, 4102
    with _owned_workdir(pem_key, uid, gid) as (workdir, key):
        with pytest.raises(AssertionError, match="exited"):
            start_daemon("-g", str(OTHER_GID), key=key, workdir=workdir, run_as=(uid, gid, []))
        errors = (workdir / "daemon.log").read_text()  # stderr
        assert errors.count("\n") == 1 and "gid %d" % OTHER_GID in errors
