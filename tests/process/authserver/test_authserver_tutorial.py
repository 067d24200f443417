"""Okera's tutorial session, verbatim: default port 5001, default group okera, the curl line.

It runs in a network namespace of its own (so port 5001 is free whatever else runs here) and
a mount namespace where /etc/group has an okera group (so the host is not changed).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from authserver_harness import REPO_ROOT, verify_with_library, verify_with_openssl

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root and unshare for private network and mount namespaces")

# `ip link set lo up` without needing iproute2: SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP.
LOOPBACK_UP = (
    "import fcntl, socket, struct; sock = socket.socket(); "
    "flags = struct.unpack('16sH', fcntl.ioctl(sock, 0x8913, struct.pack('16sH', b'lo', 0)))[1]; "
    "fcntl.ioctl(sock, 0x8914, struct.pack('16sH', b'lo', flags | 1))")

# What `pip install .` writes for the pyproject entry point okera-authserver.
CONSOLE_SCRIPT = """#!{python}
import sys
from okera_auth.authserver.cli import main
sys.exit(main())
"""


def test_entry_point_is_declared():
    text = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(r'^okera-authserver = "okera_auth\.authserver\.cli:main"$', text, re.M)


def test_tutorial_session_verbatim(pem_key, tmp_path):
    group_text = Path("/etc/group").read_text()
    match = re.search(r"^okera:[^:]*:(\d+):", group_text, re.M)
    if not match:
        group_text += "okera:x:4343:\n"
    okera_gid = int(match.group(1)) if match else 4343
    group_file = tmp_path / "group"
    group_file.write_text(group_text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    command = bin_dir / "okera-authserver"
    command.write_text(CONSOLE_SCRIPT.format(python=sys.executable))
    command.chmod(0o755)
    tokens = tmp_path / "tokens"
    script = """
set -e
mount --make-rprivate /
mount --bind {group_file} /etc/group
{python} -c "{loopback_up}"
okera-authserver -k {key} -d {tokens} > {log} 2>&1 &
for attempt in $(seq 150); do
  curl -s -o /dev/null http://localhost:5001/healthz && break
  sleep 0.1
done
TOKEN=$(curl -s http://foo:bar@localhost:5001/janedoe) && cat $TOKEN
echo
stat -c '%a %g' $TOKEN
kill -TERM %1
wait %1
""".format(group_file=group_file, key=pem_key, tokens=tokens, log=tmp_path / "server.log",
           python=sys.executable, loopback_up=LOOPBACK_UP)
    environment = dict(os.environ,
                       PATH="%s:%s" % (bin_dir, os.environ["PATH"]))
    result = subprocess.run(["unshare", "--mount", "--net", "bash", "-c", script],
                            capture_output=True, text=True, env=environment, timeout=60,
                            check=False)
    log = (tmp_path / "server.log").read_text()
    assert result.returncode == 0, result.stderr + log
    token, mode_and_group = result.stdout.strip().splitlines()
    assert mode_and_group == "640 %d" % okera_gid
    checked = verify_with_library(token, pem_key, subject="janedoe")
    assert checked.valid, checked.reason
    assert verify_with_openssl(token, pem_key)
    assert "Listening on http://127.0.0.1:5001" in log
    assert re.search(r"^Generated token: %s/janedoe\.\d+\.token$" % re.escape(str(tokens)), log, re.M)
    assert log.rstrip().endswith("Stopped")
    assert list(tokens.iterdir()) == []  # the owed file was deleted at stop
