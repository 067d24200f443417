"""Okera's tutorial: its log lines line by line, its container's environment, and its session
verbatim (default port 5001, default group okera, the curl line).

The verbatim session runs in a network namespace of its own (so port 5001 is free whatever else
runs here) and a mount namespace where /etc/group has an okera group (so the host is not changed).
"""
from __future__ import annotations

import calendar
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

from authserver_process import REPO_ROOT, READY, verify_with_library, verify_with_openssl

needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root and unshare for private network and mount namespaces")

# Okera's tutorial shows these lines of its authserver (a Go program: log.Printf on stderr).
TUTORIAL_LOG = [
    "2022/11/11 15:46:30 Listening on - writing to '/tmp/tokens'",
    "2022/11/11 15:46:33 Generated token: /tmp/tokens/janedoe.1668177993995201518.token",
]
OKERA_KINDS = ("Listening on - writing to ", "Generated token: ")
TUTORIAL_DIRECTORY = "/tmp/tokens"
# The tutorial's machine ran one hour east of UTC (the file name's nanoseconds are UTC).
TUTORIAL_TZ = "CET-1"
GO_DATE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d"


def _pattern(tutorial_line: str, directory: Path) -> "re.Pattern":
    """A tutorial line with its date, token directory and nanoseconds made variable."""
    date, message = tutorial_line[:19], tutorial_line[20:]
    assert re.fullmatch(GO_DATE, date)
    message = re.escape(message.replace(TUTORIAL_DIRECTORY, str(directory)))
    return re.compile(GO_DATE + " " + re.sub(r"\d{19}", r"(\\d{19})", message))


def _okera_lines(log: str) -> List[str]:
    """The lines of the kinds Okera's tutorial shows, in order."""
    return [line for line in log.splitlines() if line[20:].startswith(OKERA_KINDS)]


def _local_date(nanoseconds: int, east_of_utc: int) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(nanoseconds // 10**9 + east_of_utc))


def test_tutorial_lines_are_go_log_lines_in_local_time():
    """What the check below relies on: the tutorial's date is the file name's time, local."""
    nanoseconds = int(re.search(r"\.(\d{19})\.token", TUTORIAL_LOG[1]).group(1))
    assert _local_date(nanoseconds, 3600) == TUTORIAL_LOG[1][:19]
    assert calendar.timegm(time.strptime(TUTORIAL_LOG[0][:19], "%Y/%m/%d %H:%M:%S")) < nanoseconds / 1e9 + 3600


def test_log_lines_match_the_tutorials_line_by_line(start_daemon):
    daemon = start_daemon(env={"TZ": TUTORIAL_TZ})
    first_path = daemon.get("/janedoe")[2]
    daemon.wait_for_log(re.compile("Generated token: " + re.escape(first_path)))
    lines = _okera_lines(daemon.log())
    assert len(lines) == len(TUTORIAL_LOG), daemon.log()
    for ours, theirs in zip(lines, TUTORIAL_LOG):
        assert _pattern(theirs, daemon.directory).fullmatch(ours), (ours, theirs)
    # Okera's line comes first (after warnings, if any), and dates are the local time (TZ) of
    # the event: one hour east of the file name's UTC nanoseconds (not a timing check: any
    # delay is far below the hour).
    assert [line for line in daemon.log().splitlines() if " warning: " not in line][0] == lines[0]
    nanoseconds = int(re.search(r"\.(\d{19})\.token$", lines[1]).group(1))
    logged = calendar.timegm(time.strptime(lines[1][:19], "%Y/%m/%d %H:%M:%S")) - 3600
    assert 0 <= logged - nanoseconds // 10**9 < 600
    assert lines[1].endswith(first_path)
    # Our own lines are Go log lines too, and one of them still gives the URL to call.
    assert all(re.match(GO_DATE + " ", line) for line in daemon.log().splitlines())
    assert re.search(r"^%s Listening on http://127\.0\.0\.1:%d$" % (GO_DATE, daemon.port), daemon.log(), re.M)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_image_entry_point(environment: Dict[str, str], log: Path) -> subprocess.Popen:
    """okera-authserver, the console script the image's ENTRYPOINT runs, with exactly ``environment``."""
    command = Path(sys.executable).with_name("okera-authserver")
    assert command.exists(), "pip install -e . puts okera-authserver beside the interpreter"
    with open(log, "wb") as stream:
        return subprocess.Popen([str(command)], env=environment, stdout=subprocess.DEVNULL, stderr=stream)


def _wait_until_ready(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while not READY.search(log.read_text()):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


@pytest.mark.parametrize("extra", [{}, {"ALGORITHM": "RSA256", "PRIVATE_KEY_FILE": "tutorial.pem"}],
                         ids=["k8s_yaml", "algorithm_and_key_file"])
def test_tutorial_container_environment_serves_tokens(pem_key, tmp_path, extra):
    """The environment of the tutorial's k8s.yaml (Secret 'authentication' with JWT_PRIVATE_KEY
    mounted at SECRET_DIR, PORT, TOKEN_DIR, GID), plus what the image's Containerfile sets."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    key_file = secrets / extra.get("PRIVATE_KEY_FILE", "JWT_PRIVATE_KEY")
    key_file.write_bytes(pem_key.read_bytes())
    key_file.chmod(0o400)
    tokens = tmp_path / "usr" / "share" / "myservice" / "tokens"
    tokens.parent.mkdir(parents=True)
    port = _free_port()
    environment = dict({"PORT": str(port), "TOKEN_DIR": str(tokens), "SECRET_DIR": str(secrets),
                        "GID": str(os.getgid()), "OKERA_AUTHSERVER_TUTORIAL_ENV": "true",
                        "PATH": os.environ["PATH"]}, **extra)
    log = tmp_path / "authserver.log"
    process = _run_image_entry_point(environment, log)
    try:
        _wait_until_ready(process, log)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open("http://127.0.0.1:%d/janedoe" % port, timeout=10) as answer:
            path = Path(answer.read().decode())
        assert path.parent == tokens
        algorithm = "RS256" if extra else "RS512"
        checked = verify_with_library(path.read_text(), pem_key, algorithm, subject="janedoe")
        assert checked.valid, checked.reason
    finally:
        process.terminate()
        assert process.wait(20) == 0, log.read_text()
    assert re.search(r"^%s Listening on - writing to '%s'$" % (GO_DATE, re.escape(str(tokens))), log.read_text(), re.M)


def test_tutorial_names_are_ignored_without_tutorial_mode(run_authserver, tmp_path):
    """PORT and friends are common names: without --tutorial-env they are not read."""
    result = run_authserver(env={"SECRET_DIR": str(tmp_path), "PORT": "1"})
    assert result.returncode == 2
    assert result.stderr.strip().endswith("no private key given: use -k/--private-key PATH "
                                          "(or OKERA_AUTHSERVER_PRIVATE_KEY), or --private-key-secret-id SECRET")


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


@needs_namespaces
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
    lines = _okera_lines(log)
    assert len(lines) == len(TUTORIAL_LOG), log
    for ours, theirs in zip(lines, TUTORIAL_LOG):
        assert _pattern(theirs, tokens).fullmatch(ours), (ours, theirs)
    assert "Listening on http://127.0.0.1:5001" in log
    assert log.rstrip().endswith("Stopped")
    assert list(tokens.iterdir()) == []  # the owed file was deleted at stop
