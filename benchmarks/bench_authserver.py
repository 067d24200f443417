"""okera-authserver under load on 127.0.0.1, against the signing ceiling measured in the same run.

Prints: the ceiling (the token library minting RS512/RSA-2048 tokens in 2 threads), the server's
tokens/s and p50/p99 latency at 16 keep-alive clients (wrk -t2 -c16), errors, the ratio, the
server's CPU per request, its RSS once idle after warm-up and after two halves of about 100,000
requests (each followed by the delete window), and the token files left at the end.
Needs wrk (Debian: apt-get install wrk). Not part of the test run.

    python benchmarks/bench_authserver.py [--duration 10] [--requests 100000] [--directory DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parent.parent

GOALS = {"ratio": 0.6, "p99_ms": 50.0, "rss_growth": 0.02}
MAX_HALF_SECONDS = 90


def package_dir(work: Path) -> Path:
    """A PYTHONPATH entry where okera_auth is this checkout's plugins/module_utils."""
    path = work / "pythonpath"
    path.mkdir()
    (path / "okera_auth").symlink_to(REPO_ROOT / "plugins" / "module_utils")
    return path


def signing_ceiling(key, seconds: float = 3.0, threads: int = 2) -> float:
    """Tokens/s of the library alone: mint() as the server calls it, in ``threads`` threads."""
    from okera_auth.tokens import Signer, TokenSpec, mint

    signer = Signer(key, "RS512")
    spec = TokenSpec(subject="janedoe", jti=True)
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        while time.monotonic() < deadline:
            mint(signer, spec)
            counts[index] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.monotonic() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    status = Path("/proc/%d/status" % pid).read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))


def wrk(url: str, seconds: float, connections: int = 16, threads: int = 2) -> dict:
    result = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
                             "--latency", "--timeout", "5s", url],
                            capture_output=True, text=True, check=True)
    text = result.stdout

    def latency_ms(percent: str) -> float:
        match = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % percent, text, re.M)
        if match is None:
            raise SystemExit("cannot read the %s%% latency from wrk's output:\n%s" % (percent, text))
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[
            match.group(2)]

    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", text)
    if socket_errors:
        errors += sum(int(number) for number in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "requests": int(re.search(r"(\d+) requests in", text).group(1)),
            "p50": latency_ms("50"), "p99": latency_ms("99"), "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of the measured wrk run")
    parser.add_argument("--requests", type=int, default=100000,
                        help="requests of the memory run (about)")
    parser.add_argument("--directory", default=None,
                        help="token directory (default: a new one under /tmp)")
    parser.add_argument("--delete-after", type=int, default=10)
    options = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench-authserver-"))
    pythonpath = package_dir(work)
    sys.path.insert(0, str(pythonpath))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = work / "key.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    directory = Path(options.directory) if options.directory else work / "tokens"
    log_path = work / "server.log"
    server = None
    try:
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "okera_auth.authserver", "-k", str(key_path), "-d",
                 str(directory), "-g", str(os.getgid()), "-p", "0",
                 "--delete-after", str(options.delete_after)],
                stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONPATH=str(pythonpath)))
        deadline = time.monotonic() + 20
        match = None
        while match is None and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.05)
            match = re.search(r"Listening on (http://\S+)", log_path.read_text())
        if match is None:
            print("the server did not start: %s" % log_path.read_text(), file=sys.stderr)
            return 1
        url = match.group(1) + "/janedoe"
        settle = options.delete_after + 2
        wrk(url, 2)  # warm-up
        time.sleep(settle)
        rss_warm = rss_kib(server.pid)
        # Other work on the machine moves both figures: measure the ceiling right before
        # and right after the server, and compare with their mean.
        ceiling_before = signing_ceiling(key)
        cpu_start = cpu_seconds(server.pid)
        measured = wrk(url, options.duration)
        cpu_per_request = (cpu_seconds(server.pid) - cpu_start) / max(measured["requests"], 1)
        ceiling_after = signing_ceiling(key)
        ceiling = (ceiling_before + ceiling_after) / 2
        ratio = measured["rps"] / ceiling
        # About options.requests more, in two halves, each followed by the delete window: RSS
        # under load follows the files and timers pending deletion; once they are gone it must
        # come back to the same figure after each half.
        half_seconds = min(MAX_HALF_SECONDS,
                           max(5, int(options.requests / 2 / max(measured["rps"], 1))))
        halves, rss_after = [], []
        for _round in range(2):
            halves.append(wrk(url, half_seconds))
            time.sleep(settle)
            rss_after.append(rss_kib(server.pid))
        left = len(list(directory.glob("*.token")))
        rss_peak = int(re.search(r"^VmHWM:\s+(\d+) kB",
                                 Path("/proc/%d/status" % server.pid).read_text(), re.M).group(1))
        errors = measured["errors"] + sum(half["errors"] for half in halves)
        served_half = measured["requests"] + halves[0]["requests"]
        served = served_half + halves[1]["requests"]
        growth = (rss_after[1] - rss_after[0]) / rss_after[0]
        print("token directory           %s" % directory)
        print("signing ceiling           %.0f tokens/s (library, RS512 RSA-2048, 2 threads; "
              "%.0f before, %.0f after the server run)" % (ceiling, ceiling_before, ceiling_after))
        print("server                    %.0f tokens/s (wrk -t2 -c16 keep-alive, %d s)"
              % (measured["rps"], options.duration))
        print("latency                   p50 %.2f ms, p99 %.2f ms" % (measured["p50"], measured["p99"]))
        print("server CPU                %.3f ms per request (signing, file, HTTP, deletion)"
              % (cpu_per_request * 1000))
        print("errors                    %d" % errors)
        print("ratio                     %.2f (goal >= %.1f)" % (ratio, GOALS["ratio"]))
        print("memory run                %d requests at %.0f/s, p99 %.2f ms"
              % (served - measured["requests"], sum(h["rps"] for h in halves) / 2,
                 max(h["p99"] for h in halves)))
        print("RSS (idle, files deleted) %d KiB after warm-up, %d KiB after %d requests, "
              "%d KiB after %d requests (%+.1f%%); peak under load %d KiB"
              % (rss_warm, rss_after[0], served_half, rss_after[1], served, growth * 100,
                 rss_peak))
        print("token files left          %d (after the %d s delete window + 2 s)"
              % (left, options.delete_after))
        met = (ratio >= GOALS["ratio"] and errors == 0 and measured["p99"] < GOALS["p99_ms"]
               and left == 0 and growth < GOALS["rss_growth"])
        print("goals                     %s" % ("met" if met else "NOT met"))
        return 0
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
