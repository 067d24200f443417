"""okera-authserver against its peers and against the signing ceiling, in interleaved rounds.

The same job in every server: GET /<user> signs an RS512 JWT (RSA-2048, key loaded once),
writes it to a 0640 file given to a group, answers the path, and deletes the file later. The
servers: okera-authserver with --processes auto (a node) and with --processes 1 (a sidecar),
a Node.js server (node:http + node:crypto, benchmarks/peers/authserver.js), a Go server
(standard library only, benchmarks/peers/authserver.go; when `go` is installed) and the
tutorials' Python server (ThreadingHTTPServer + PyJWT, benchmarks/peers/naive_authserver.py).

Each round measures the ceiling first (cryptography signing the same input in 2 threads, the
most any server could mint on these cores), then runs wrk against every server, connection
count and token directory (tmpfs and ext4), the servers' order turning from round to round.
The table gives medians over the rounds; ratios (to the ceiling, to Node.js) are taken
within each round, then their median. Then: okera-authserver's RSS over about 100,000 more
requests (files deleted after 1 s so that pending files do not hide a leak), its start to
first answer and idle RSS per instance, and "goal met / not met" lines. The package is
byte-compiled first, as pip install does, so that no start compiles sources.
Needs wrk (Debian: apt-get install wrk) and node; go is optional. Not part of the test run.

    python benchmarks/bench_authserver.py [--quick] [--rounds 3] [--duration 5]
"""
from __future__ import annotations

import argparse
import compileall
import http.client
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import okera_auth.module_utils

PEERS = Path(__file__).resolve().parent / "peers"
GOALS = {"vs_node": 1.1, "ratio": 0.6, "rss_growth": 0.02, "worker_rss_mib": 30.0,
         "first_answer_ms": 150.0}
MAX_HALF_SECONDS = 120


def signing_ceiling(key, seconds: float, threads: int = 2) -> float:
    """Signatures/s of cryptography alone (RS512 over a token-sized input) in ``threads``."""
    data = b"x" * 300
    pad, digest = padding.PKCS1v15(), hashes.SHA512()
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        while time.monotonic() < deadline:
            key.sign(data, pad, digest)
            counts[index] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.monotonic() - started)


def process_tree(pid: int) -> List[int]:
    """``pid`` and its children (the worker processes of a supervisor)."""
    pids = [pid]
    try:
        children = Path("/proc/%d/task/%d/children" % (pid, pid)).read_text().split()
    except OSError:
        children = []
    for child in children:
        pids.extend(process_tree(int(child)))
    return pids


def rss_kib(pid: int) -> int:
    try:
        status = Path("/proc/%d/status" % pid).read_text()
    except OSError:
        return 0
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))


def cpu_seconds(pids: List[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wrk(url: str, seconds: float, connections: int) -> dict:
    threads = min(2, connections)
    result = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections,
                             "-d%ds" % max(1, round(seconds)), "--latency", "--timeout", "5s",
                             url], capture_output=True, text=True, check=True)
    text = result.stdout

    def latency_ms(percent: str) -> float:
        match = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % percent, text, re.M)
        if match is None:
            return float("nan")
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


def filesystem(path: Path) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


class Server:
    """One server process under test; its output goes to a log file."""

    LISTENING = re.compile(r"Listening on (http://[0-9.:\[\]]+)")

    def __init__(self, name: str, command: List[str], log: Path,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.log = log
        started = time.monotonic()
        environment = dict(os.environ, **(env or {}))
        with open(log, "wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                            env=environment)
        deadline = time.monotonic() + 30
        self.url = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            match = self.LISTENING.search(log.read_text(errors="replace"))
            if match and "Signing with" in log.read_text(errors="replace") or (
                    match and not name.startswith("okera")):
                self.url = match.group(1)
                break
            time.sleep(0.002)
        if not self.url:
            raise SystemExit("%s did not start: %s" % (name, log.read_text(errors="replace")))
        self.first_answer_ms = self._first_answer(started)

    def _first_answer(self, started: float) -> float:
        host, port = self.url[len("http://"):].rsplit(":", 1)
        while True:
            try:
                connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=5)
                connection.request("GET", "/janedoe")
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status == 200:
                    return (time.monotonic() - started) * 1000
            except OSError:
                pass
            if time.monotonic() - started > 30:
                return float("nan")
            time.sleep(0.001)

    @property
    def pids(self) -> List[int]:
        return process_tree(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def compile_package() -> None:
    """Byte-compile okera_auth as pip does when it installs the wheel: from a checkout (an
    editable install, often with PYTHONDONTWRITEBYTECODE=1) every start would compile the
    sources again, which no installed server does."""
    for path in list(okera_auth.__path__) + list(okera_auth.module_utils.__path__):
        compileall.compile_dir(path, quiet=1)


def build_go(work: Path) -> Optional[Path]:
    if not shutil.which("go"):
        return None
    source = work / "go"
    source.mkdir()
    shutil.copy(PEERS / "authserver.go", source / "main.go")
    (source / "go.mod").write_text("module peer\n\ngo 1.19\n")
    binary = work / "authserver-go"
    result = subprocess.run(["go", "build", "-o", str(binary), "."], cwd=source,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print("go build failed, no Go server: %s" % result.stderr.strip(), file=sys.stderr)
        return None
    return binary


def commands(name: str, key: Path, directory: Path, go_binary: Optional[Path],
             delete_after: int = 10) -> Optional[List[str]]:
    gid = str(os.getgid())
    if name.startswith("okera-authserver"):
        processes = "auto" if name.endswith("auto") else "1"
        return [sys.executable, "-m", "okera_auth.authserver", "-k", str(key), "-d",
                str(directory), "-g", gid, "-p", "0", "--delete-after", str(delete_after),
                "--processes", processes]
    if name == "node":
        return ["node", str(PEERS / "authserver.js"), "--key", str(key), "--directory",
                str(directory), "--gid", gid, "--delete-after", str(delete_after)]
    if name == "go":
        return None if go_binary is None else [
            str(go_binary), "-key", str(key), "-directory", str(directory), "-gid", gid,
            "-delete-after", "%ds" % delete_after]
    if name == "python-naive":
        return [sys.executable, str(PEERS / "naive_authserver.py"), "--key", str(key),
                "--directory", str(directory), "--gid", gid, "--delete-after",
                str(delete_after)]
    raise ValueError(name)


OURS = "okera-authserver --processes auto"
SIDECAR = "okera-authserver --processes 1"
SERVERS = (OURS, SIDECAR, "node", "go", "python-naive")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 1 s runs, 10,000 requests for memory: under 2 minutes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each wrk run")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--requests", type=int, default=100000,
                        help="requests of the memory run (about)")
    parser.add_argument("--tmpfs", default="/dev/shm", help="a directory on tmpfs")
    parser.add_argument("--ext4", default="/tmp", help="a directory on ext4 (or another disk)")
    parser.add_argument("--servers", default=",".join(SERVERS))
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.duration, options.requests = 1, 1.0, 10000
    for tool in ("wrk", "node"):
        if not shutil.which(tool):
            print("%s is needed (Debian: apt-get install %s)" % (tool, tool), file=sys.stderr)
            return 2
    connections = [int(item) for item in options.connections.split(",")]
    names = [name for name in options.servers.split(",") if name]
    work = Path(tempfile.mkdtemp(prefix="bench-authserver-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = work / "key.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    go_binary = build_go(work) if "go" in names else None
    compile_package()
    places = {}
    for label, base in (("tmpfs", options.tmpfs), ("ext4", options.ext4)):
        kind = filesystem(Path(base))
        place = Path(tempfile.mkdtemp(prefix="bench-authserver-", dir=base))
        places[label] = (place, kind)
    servers: Dict[tuple, Server] = {}
    started_at = time.monotonic()
    try:
        for label, (place, _kind) in places.items():
            for name in names:
                command = commands(name, key_path, place / name.split()[-1].strip("-"),
                                   go_binary)
                if command is None:
                    continue
                servers[(name, label)] = Server(name, command, work / ("%s-%s.log" % (
                    name.replace(" ", "_"), label)))
        names = [name for name in names if any(key_ == (name, label)
                                               for key_ in servers for label in places)]
        for server in servers.values():  # warm-up
            wrk(server.url + "/janedoe", 1, 16)
        runs: Dict[tuple, List[dict]] = {}
        cpu: Dict[tuple, List[float]] = {}
        ceilings = []
        for round_index in range(options.rounds):
            ceiling = signing_ceiling(key, 2.0 if not options.quick else 1.5)
            ceilings.append(ceiling)
            order = names[round_index % len(names):] + names[:round_index % len(names)]
            for label in places:
                for count in connections:
                    node_rps = None
                    results = {}
                    for name in order:
                        server = servers.get((name, label))
                        if server is None:
                            continue
                        pids = server.pids
                        before = cpu_seconds(pids)
                        result = wrk(server.url + "/janedoe", options.duration, count)
                        cpu.setdefault((name, label, count), []).append(
                            (cpu_seconds(pids) - before) / max(1, result["requests"]))
                        result["ceiling"] = ceiling
                        results[name] = result
                    node_rps = results.get("node", {}).get("rps")
                    for name, result in results.items():
                        result["vs_node"] = result["rps"] / node_rps if node_rps else float("nan")
                        runs.setdefault((name, label, count), []).append(result)
            print("round %d of %d done (ceiling %.0f signatures/s, %.0f s so far)"
                  % (round_index + 1, options.rounds, ceiling, time.monotonic() - started_at),
                  file=sys.stderr)
        first_answers = {name: server.first_answer_ms for (name, label), server
                         in servers.items() if label == "tmpfs"}
        idle_rss = {}
        for (name, label), server in servers.items():
            if label == "tmpfs":
                idle_rss[name] = [rss_kib(pid) for pid in server.pids]
        for server in servers.values():
            server.stop()
        servers.clear()
        memory = memory_run(key_path, places["tmpfs"][0] / "memory", options, work)
        instance = per_instance(key_path, places["tmpfs"][0] / "instance", work)
    finally:
        for server in servers.values():
            server.stop()
        for place, _kind in places.values():
            shutil.rmtree(place, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    report(runs, cpu, ceilings, places, connections, names, memory, instance, first_answers,
           idle_rss, options, time.monotonic() - started_at)
    return 0


def memory_run(key_path: Path, directory: Path, options, work: Path) -> dict:
    """okera-authserver --processes auto over options.requests requests, files deleted after
    1 s: the RSS of every process after warm-up and after each half."""
    server = Server(OURS, commands(OURS, key_path, directory, None, delete_after=1),
                    work / "memory.log")
    try:
        wrk(server.url + "/janedoe", 2, 16)
        time.sleep(2)
        rss = [sum(rss_kib(pid) for pid in server.pids)]
        halves = []
        for _half in range(2):
            served = {"requests": 0, "errors": 0, "rps": []}
            begun = time.monotonic()
            while served["requests"] < options.requests // 2 and \
                    time.monotonic() - begun < MAX_HALF_SECONDS:
                result = wrk(server.url + "/janedoe", 5, 16)
                served["requests"] += result["requests"]
                served["errors"] += result["errors"]
                served["rps"].append(result["rps"])
            halves.append(served)
            time.sleep(2)
            rss.append(sum(rss_kib(pid) for pid in server.pids))
        left = len(list(directory.glob("*.token")))
    finally:
        server.stop()
    left_after_stop = len(list(directory.glob("*.token")))
    return {"rss": rss, "halves": halves, "left": left, "left_after_stop": left_after_stop,
            "growth": (rss[2] - rss[1]) / rss[1]}


def per_instance(key_path: Path, directory: Path, work: Path) -> dict:
    """One --processes 1 server (a sidecar): start to first answer, RSS idle after start and
    idle after 2,000 requests once their files are deleted (median of 3 starts)."""
    starts, idle, loaded = [], [], []
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        server = Server(SIDECAR, commands(SIDECAR, key_path, directory / str(attempt), None,
                                          delete_after=1), work / ("instance-%d.log" % attempt))
        try:
            starts.append(server.first_answer_ms)
            time.sleep(0.5)
            idle.append(rss_kib(server.process.pid))
            wrk(server.url + "/janedoe", 1, 4)
            time.sleep(2.5)
            loaded.append(rss_kib(server.process.pid))
        finally:
            server.stop()
    return {"first_answer_ms": statistics.median(starts), "rss_idle": statistics.median(idle),
            "rss_after_load": statistics.median(loaded)}


def _median(values: List[float]) -> float:
    values = [value for value in values if not math.isnan(value)]
    return statistics.median(values) if values else float("nan")


def report(runs, cpu, ceilings, places, connections, names, memory, instance, first_answers,
           idle_rss, options, elapsed) -> None:
    print()
    print("Signing ceiling (cryptography, RS512 RSA-2048, 2 threads), per round: %s signatures/s"
          % ", ".join("%.0f" % value for value in ceilings))
    for label, (place, kind) in places.items():
        print("%-6s token directory: %s (%s)" % (label, place, kind))
    print("%d round(s), wrk %.0f s per run; medians over rounds; ratios taken within each "
          "round" % (options.rounds, options.duration))
    print()
    header = ("| server | dir | conns | tokens/s | x ceiling | x Node.js | p50 ms | p99 ms "
              "| errors | CPU ms/token |")
    print(header)
    print("|" + "---|" * 10)
    for label in places:
        for count in connections:
            for name in names:
                results = runs.get((name, label, count))
                if not results:
                    continue
                print("| %s | %s | %d | %s | %.2f | %.2f | %.1f | %.1f | %d | %.3f |" % (
                    name, label, count, "{:,.0f}".format(_median([r["rps"] for r in results])),
                    _median([r["rps"] / r["ceiling"] for r in results]),
                    _median([r["vs_node"] for r in results]),
                    _median([r["p50"] for r in results]), _median([r["p99"] for r in results]),
                    sum(r["errors"] for r in results),
                    _median(cpu[(name, label, count)]) * 1000))
    print()
    halves = memory["halves"]
    print("Memory (%s, files deleted after 1 s): %s + %s requests at %.0f/s, %d errors; RSS of "
          "all processes %d KiB after warm-up, %d after the first half, %d after the second "
          "(%+.1f%%); token files left %d while running, %d after SIGTERM"
          % (OURS, "{:,}".format(halves[0]["requests"]), "{:,}".format(halves[1]["requests"]),
             _median(halves[0]["rps"] + halves[1]["rps"]),
             halves[0]["errors"] + halves[1]["errors"], memory["rss"][0], memory["rss"][1],
             memory["rss"][2], memory["growth"] * 100, memory["left"],
             memory["left_after_stop"]))
    print("Per instance (%s, median of 3 starts): first answer %.0f ms after the start, RSS "
          "%.1f MiB idle after start, %.1f MiB idle after 2,000 requests"
          % (SIDECAR, instance["first_answer_ms"], instance["rss_idle"] / 1024,
             instance["rss_after_load"] / 1024))
    for name, pids in idle_rss.items():
        print("  %-34s first answer %5.0f ms after start; RSS after the runs: %s MiB" % (
            name, first_answers.get(name, float("nan")),
            " + ".join("%.1f" % (value / 1024) for value in pids)))
    print()

    def cell(name, label, count, field):
        results = runs.get((name, label, count), [])
        if field == "ratio":
            return _median([r["rps"] / r["ceiling"] for r in results])
        if field == "vs_node":
            return _median([r["vs_node"] for r in results])
        return _median([r[field] for r in results])

    def goal(text: str, met: bool) -> None:
        print("goal %s: %s" % ("met    " if met else "NOT met", text))

    # The rows on which okera-authserver must be ahead of Node.js (issue 13's table).
    for label, count in (("tmpfs", 16), ("tmpfs", 64), ("ext4", 16), ("ext4", 1)):
        if (OURS, label, count) not in runs or ("node", label, count) not in runs:
            continue
        vs_node = cell(OURS, label, count, "vs_node")
        p99, node_p99 = cell(OURS, label, count, "p99"), cell("node", label, count, "p99")
        plural = "" if count == 1 else "s"
        goal("%s, %d connection%s: %.2fx Node.js's tokens/s (>= %.1f), p99 %.1f ms against "
             "Node.js's %.1f ms (no worse)" % (label, count, plural, vs_node, GOALS["vs_node"], p99, node_p99),
             vs_node >= GOALS["vs_node"] and p99 <= node_p99)
    if (OURS, "tmpfs", 16) in runs:
        ratio = cell(OURS, "tmpfs", 16, "ratio")
        goal("tmpfs, 16 connections: %.2f of the 2-thread signing ceiling (>= %.1f)"
             % (ratio, GOALS["ratio"]), ratio >= GOALS["ratio"])
    errors = sum(r["errors"] for key, results in runs.items() if key[0].startswith("okera")
                 for r in results) + sum(h["errors"] for h in memory["halves"])
    goal("errors of okera-authserver in every run: %d (zero)" % errors, errors == 0)
    goal("memory flat over %s requests: %+.1f%% from the first half to the second (< %d%%), "
         "%d files left" % ("{:,}".format(sum(h["requests"] for h in halves)),
                            memory["growth"] * 100, GOALS["rss_growth"] * 100,
                            memory["left"] + memory["left_after_stop"]),
         memory["growth"] < GOALS["rss_growth"] and memory["left_after_stop"] == 0)
    goal("RSS of one worker idle: %.1f MiB (<= %.0f)" % (
        instance["rss_idle"] / 1024, GOALS["worker_rss_mib"]),
        instance["rss_idle"] / 1024 <= GOALS["worker_rss_mib"])
    goal("start to first answer: %.0f ms (<= %.0f)" % (
        instance["first_answer_ms"], GOALS["first_answer_ms"]),
        instance["first_answer_ms"] <= GOALS["first_answer_ms"])
    print("(%.0f s in all)" % elapsed)


if __name__ == "__main__":
    sys.exit(main())
