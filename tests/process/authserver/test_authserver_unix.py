"""The Unix-socket listener: mode 0660 for the group, callers checked by SO_PEERCRED."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run clients as other uids")

GROUP = 4242
PERMITTED_UID, REFUSED_UID, OUTSIDER_UID = 4201, 4202, 4203

# The client switches to the uid/gid first: SO_PEERCRED records them at connect().
CLIENT = """
import os, socket, sys
uid, gid, path, user = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
os.setgroups([]); os.setgid(gid); os.setuid(uid)
sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect(path)
except PermissionError:
    sys.stdout.write("EACCES"); sys.exit(0)
sock.sendall(b"GET /%s HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n" % user.encode())
data = b""
while True:
    chunk = sock.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
"""


@pytest.fixture
def socket_dir():
    """A directory other uids can traverse (pytest's tmp_path is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="authserver-sock-"))
    os.chmod(directory, 0o755)
    yield directory
    subprocess.run(["rm", "-rf", str(directory)], check=True)


def call_as(uid: int, gid: int, socket_path: Path, user: str = "janedoe") -> str:
    result = subprocess.run([sys.executable, "-c", CLIENT, str(uid), str(gid), str(socket_path),
                             user], capture_output=True, timeout=30, check=True)
    return result.stdout.decode()


def test_socket_is_0660_for_the_group(start_daemon, socket_dir):
    path = socket_dir / "authserver.sock"
    start_daemon("--unix-socket", str(path), "-g", str(GROUP))
    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o660, GROUP)


def test_permitted_uid_gets_a_token_and_refused_uid_gets_403(start_daemon, socket_dir):
    path = socket_dir / "authserver.sock"
    daemon = start_daemon("--unix-socket", str(path), "-g", str(GROUP), "--no-tcp",
                          "--allowed-uids", "%d,1" % PERMITTED_UID, tcp=False)
    assert "Listening on http" not in daemon.log()
    permitted = call_as(PERMITTED_UID, GROUP, path)
    assert permitted.startswith("HTTP/1.1 200 OK")
    token_path = Path(permitted.split("\r\n\r\n", 1)[1])
    assert token_path.parent == daemon.directory and token_path.exists()
    refused = call_as(REFUSED_UID, GROUP, path)
    assert refused.startswith("HTTP/1.1 403 Forbidden")
    assert "uid %d" % REFUSED_UID in refused
    assert len(daemon.token_files()) == 1
    assert "Refused caller uid=%d gid=%d" % (REFUSED_UID, GROUP) in daemon.log()


def test_allowed_gids_admit_by_primary_group(start_daemon, socket_dir):
    path = socket_dir / "authserver.sock"
    start_daemon("--unix-socket", str(path), "-g", str(GROUP), tcp=False,
                 env={"OKERA_AUTHSERVER_ALLOWED_GIDS": str(GROUP),
                      "OKERA_AUTHSERVER_NO_TCP": "true"})
    assert call_as(REFUSED_UID, GROUP, path).startswith("HTTP/1.1 200 OK")


def test_allow_list_with_tcp_on_is_refused_at_start(run_authserver, pem_key, socket_dir):
    """Any local user can reach the TCP port: an allow-list on the socket alone is no limit."""
    path = socket_dir / "authserver.sock"
    for allow in (["--allowed-uids", str(PERMITTED_UID)], ["--allowed-gids", str(GROUP)]):
        result = run_authserver("-k", str(pem_key), "-d", str(socket_dir / "t"), "-g", str(GROUP),
                                "-p", "0", "--unix-socket", str(path), *allow)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "--no-tcp" in result.stderr and "--allow-unchecked-tcp" in result.stderr
        assert "Traceback" not in result.stderr and not path.exists()


def test_allow_unchecked_tcp_serves_both_and_checks_only_the_socket(start_daemon, socket_dir):
    path = socket_dir / "authserver.sock"
    daemon = start_daemon("--unix-socket", str(path), "-g", str(GROUP), "--allowed-uids",
                          str(PERMITTED_UID), env={"OKERA_AUTHSERVER_ALLOW_UNCHECKED_TCP": "yes"})
    assert call_as(REFUSED_UID, GROUP, path).startswith("HTTP/1.1 403 Forbidden")
    assert daemon.get("/janedoe")[0] == 200  # TCP: unchecked, as accepted


def test_callers_outside_the_group_cannot_connect(start_daemon, socket_dir):
    path = socket_dir / "authserver.sock"
    start_daemon("--unix-socket", str(path), "-g", str(GROUP))
    assert call_as(OUTSIDER_UID, OUTSIDER_UID, path) == "EACCES"


def test_socket_is_removed_at_stop_and_a_stale_one_replaced(start_daemon, socket_dir):
    path = socket_dir / "authserver.sock"
    first = start_daemon("--unix-socket", str(path))
    first.kill()  # leaves the socket file behind
    assert path.exists()
    second = start_daemon("--unix-socket", str(path))
    assert call_as(0, 0, path).startswith("HTTP/1.1 200 OK")
    assert second.stop() == 0
    assert not path.exists()


def test_a_regular_file_in_the_socket_place_is_refused(run_authserver, pem_key, socket_dir):
    path = socket_dir / "authserver.sock"
    path.write_text("not a socket")
    result = run_authserver("-k", str(pem_key), "-d", str(socket_dir / "t"), "-g", "0",
                            "-p", "0", "--unix-socket", str(path))
    assert result.returncode == 2
    assert "is not a socket" in result.stderr and result.stderr.count("\n") == 1
    assert path.read_text() == "not a socket"
