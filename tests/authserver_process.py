"""okera-authserver as a real process for the tests (of the daemon and of its clients), and
token checks independent of the code under test."""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from okera_auth.module_utils.keys import load_public_keys
from okera_auth.module_utils.tokens import verify

REPO_ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"Listening on http://(\[[0-9a-f:]+\]|[0-9.]+):(\d+)")
READY = re.compile(r"Signing with .* key kid=")
ISSUED = re.compile(r"^okera_authserver_tokens_issued_total (\d+)$", re.MULTILINE)


def ssh_keygen(directory: Path, *options: str) -> Path:
    key = directory / "id"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-f", str(key), *options], check=True)
    os.chmod(key, 0o600)
    return key


def public_pem(private_key: Path) -> Path:
    """The public half in SubjectPublicKeyInfo PEM, exported by ssh-keygen (not by our code)."""
    public = private_key.with_name(private_key.name + ".spki.pem")
    if not public.exists():
        exported = subprocess.run(["ssh-keygen", "-e", "-m", "PKCS8", "-f", str(private_key) + ".pub"],
                                  check=True, capture_output=True)
        public.write_bytes(exported.stdout)
    return public


def verify_with_library(token: str, private_key: Path, algorithm: str = "RS512", **claims):
    keys = load_public_keys(public_pem(private_key).read_bytes())
    return verify(token, keys, [algorithm], **claims)


def verify_with_openssl(token: str, private_key: Path, digest: str = "-sha512") -> bool:
    """Check an RS* signature with openssl dgst, independent of PyJWT and cryptography."""
    header, payload, signature = token.split(".")
    work = private_key.parent
    data = work / "signing_input.bin"
    sig = work / "signature.bin"
    data.write_bytes(("%s.%s" % (header, payload)).encode("ascii"))
    sig.write_bytes(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    result = subprocess.run(["openssl", "dgst", digest, "-verify", str(public_pem(private_key)),
                             "-signature", str(sig), str(data)], capture_output=True, text=True,
                            check=False)
    return result.returncode == 0 and "Verified OK" in result.stdout


# The interpreter lives where other users cannot read it (/root/.pyenv): load the server
# and everything it imports first, then drop to the user, then run. Some imports come late:
# argparse's of shutil (when it builds the parser), the supervisor (only with --processes N).
_RUN_AS = ("import os, shutil, sys; import okera_auth.authserver.cli as server; "
           "import okera_auth.authserver.supervisor; "
           "os.setgroups([int(x) for x in sys.argv[3].split(',') if x]); "
           "os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1])); "
           "sys.exit(server.main(sys.argv[4:]))")


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
    return b"".join(chunks)


class Daemon:
    """One okera-authserver subprocess; its output goes to files (never a pipe it could fill):
    the log lines (stderr, as Go's log package writes them) to daemon.log, stdout to daemon.out."""

    def __init__(self, workdir: Path, key: Optional[Path], args: List[str],
                 env: Optional[Dict[str, str]] = None, tcp: bool = True,
                 run_as: Optional[Tuple[int, int, List[int]]] = None,
                 preexec_fn: Optional[Callable[[], None]] = None) -> None:
        """``run_as`` (uid, gid, supplementary gids) starts the server as that user;
        ``preexec_fn`` runs in the child before the server starts (e.g. to set a limit)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.directory = workdir / "tokens"
        self.log_path = workdir / "daemon.log"
        self.out_path = workdir / "daemon.out"
        if run_as:
            uid, gid, groups = run_as
            launcher = [sys.executable, "-c", _RUN_AS, str(uid), str(gid),
                        ",".join(map(str, groups))]
        else:
            launcher = [sys.executable, "-m", "okera_auth.authserver"]
        # key None: the server is told where its key is some other way (--private-key-secret-id).
        command = launcher + (["-k", str(key)] if key is not None else []) + [
            "-d", str(self.directory), "-g", str(os.getgid())]
        if tcp:
            command += ["-p", "0"]
        command += args
        # Several servers may share a work directory one after the other: read only our lines.
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        environment = dict(os.environ)
        environment.update(env or {})
        with open(self.out_path, "ab") as out, open(self.log_path, "ab") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, env=environment,
                                            preexec_fn=preexec_fn)
        self.port = int(self.wait_for_log(LISTENING).group(2)) if tcp else 0
        self.wait_for_log(READY)  # logged once every listener is in place

    def wait_for_log(self, pattern: "re.Pattern", timeout: float = 15.0) -> "re.Match":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = pattern.search(self.log())
            if match:
                return match
            if self.process.poll() is not None:
                raise AssertionError("the daemon exited (%s): %s"
                                     % (self.process.returncode, self.log()))
            time.sleep(0.02)
        raise AssertionError("%r not seen in the daemon log: %s" % (pattern.pattern, self.log()))

    def log(self) -> str:
        with open(self.log_path, "rb") as handle:
            handle.seek(self.log_start)
            return handle.read().decode()

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path: str, headers: Optional[Dict[str, str]] = None):
        """(status, headers, body text) of one GET on a fresh connection."""
        connection = self.connection()
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def tokens_issued(self) -> int:
        """okera_authserver_tokens_issued_total, from /metrics."""
        status, _headers, body = self.get("/metrics")
        assert status == 200, body
        return int(ISSUED.search(body).group(1))

    def token_json(self, user: str) -> dict:
        status, _headers, body = self.get("/%s?format=json" % user)
        assert status == 200, body
        return json.loads(body)

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def token_files(self) -> List[Path]:
        return sorted(self.directory.glob("*.token"))
