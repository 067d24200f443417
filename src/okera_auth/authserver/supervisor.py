# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""--processes N: worker processes on one port, and the supervisor that keeps them.

One Python process runs its Python work (HTTP, claims, files, log lines) on one core at a
time; signing alone leaves the GIL. So the server forks N workers once everything that can
fail at start is done (key, group, directory: see app.AuthServer): they share the key
loaded once (copy-on-write), each listens on the same TCP port with SO_REUSEPORT (the kernel
spreads connections over them; a listening socket shared by asyncio loops would not, as the
first to wake accepts every waiting connection) and all accept on the one Unix socket.

The supervisor serves nothing itself. It
* logs the lines about the whole server once (listening, reloads, stopping), and tells
  systemd (READY=1 when every worker listens, RELOADING=1/READY=1, STOPPING=1);
* on SIGHUP reads the key, passphrase and groups file once, checks that the key loads, and
  sends the same bytes to every worker, which swaps its key when it has loaded them (a key
  that does not load is one "Reload failed" line, and every worker keeps the old one);
* on SIGTERM or SIGINT sends SIGTERM to every worker: each finishes its requests in flight
  and deletes the token files it wrote (deletions belong to the process that wrote the
  file); then it removes the Unix socket and exits 0;
* starts another worker when one dies, and since the dead one's files are owed a deletion,
  deletes the token files older than the death once --delete-after has passed (a live
  worker's files of that age are gone by then). A worker that keeps dying (RESTARTS_MAX in
  RESTART_WINDOW seconds) stops the server with exit code 1, for systemd to restart it.

Counters live in memory shared by the workers (events.MetricsTable): /metrics, answered by any
worker, adds them up.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any, Dict, List, Optional

from .app import AuthServer, _remove_socket, clear_socket_path, _send_line, notify_systemd, read_key_material, \
    parse_groups, signer_from, _reason
from .events import key_identity
from .issuer import TOKEN_FILE
from .options import StartupError

START_SECONDS = 30.0
RESTARTS_MAX = 5
RESTART_WINDOW = 60.0
# Beyond the drain (10 s), what a worker may take to delete its files and exit.
STOP_GRACE_SECONDS = 5.0
# The signals the supervisor handles (through its wake-up pipe) and a worker must not.
SUPERVISOR_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


class _Worker:
    __slots__ = ("index", "pid", "control", "received", "ready", "started_at")

    def __init__(self, index: int, pid: int, control: socket.socket) -> None:
        self.index = index
        self.pid = pid
        self.control = control
        self.received = bytearray()
        self.ready = False
        self.started_at = time.monotonic()


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to host:port with SO_REUSEPORT: it holds the port for the
    workers' listening sockets, picks it when ``port`` is 0, and never takes a connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartupError("cannot listen on %s port %d: %s"
                           % (host, port, error.strerror)) from None
    return sock


def unix_listener(path: str, gid: int) -> socket.socket:
    """The listening Unix socket (0660, the group's), made before the workers, shared by them."""
    clear_socket_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o117)  # never reachable by others, not even briefly
    try:
        sock.bind(path)
        sock.listen(1024)
    except OSError as error:
        sock.close()
        raise StartupError("cannot listen on the Unix socket %s: %s"
                           % (path, error.strerror)) from None
    finally:
        os.umask(old_umask)
    os.chown(path, -1, gid)
    os.chmod(path, 0o660)
    sock.setblocking(False)
    return sock


class Supervisor:
    """Forks the worker processes of one AuthServer and keeps them (see the module's text)."""

    def __init__(self, server: AuthServer) -> None:
        self.server = server
        self.settings = server.settings
        self.log = server.log
        self.count = server.processes
        self.workers: Dict[int, _Worker] = {}
        self.selector = selectors.DefaultSelector()
        self.port: Optional[int] = None
        self.reservation: Optional[socket.socket] = None
        self.unix: Optional[socket.socket] = None
        self.stopping = False
        self.reloading: Optional[Dict[str, Any]] = None
        self.restarts: List[float] = []
        self.sweeps: List[tuple] = []  # (when, files written before this time_ns)
        self._wake_r = self._wake_w = -1

    # -- start -------------------------------------------------------------------------------

    def run(self) -> int:
        settings = self.settings
        self.server.remove_stale_files()
        if not settings.no_tcp:
            self.reservation = reserve_port(settings.bind, settings.port)
            self.port = self.reservation.getsockname()[1]
        if settings.unix_socket:
            self.unix = unix_listener(settings.unix_socket, self.server.gid)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        for number in SUPERVISOR_SIGNALS:
            signal.signal(number, _note_signal)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            for index in range(self.count):
                self._start(index)
            self._wait_until_ready()
            self.server.log_serving(self.port)
            notify_systemd("READY=1")
            code = self._serve()
        finally:
            if self.unix is not None and settings.unix_socket:
                _remove_socket(settings.unix_socket)
        self.log.event("stopped", "Stopped")
        return code

    def _start(self, index: int) -> None:
        parent_end, child_end = socket.socketpair()
        self.log.flush()
        sys.stderr.flush()
        # Until the worker has its own handlers, a SIGTERM (the supervisor stopping while it
        # forks) must wait: the supervisor's handler would swallow it into the wake-up pipe,
        # and the worker would serve on until SIGKILL.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SUPERVISOR_SIGNALS)
        pid = os.fork()
        if pid != 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if pid == 0:  # the worker
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(number, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads come from the supervisor
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(self._wake_r)
                os.close(self._wake_w)
                parent_end.close()
                for worker in self.workers.values():
                    worker.control.close()
                if self.reservation is not None:
                    self.reservation.close()
                asyncio.run(self.server.run_worker(index, child_end, self.port, self.unix))
                code = 0
            except BaseException as error:  # noqa: BLE001 - said in one line, then exit 1
                self.log.error("worker_failed", "Worker process %d stopped: %s"
                               % (index, _reason(error)))
            finally:
                self.log.flush()
                os._exit(code)
        child_end.close()
        parent_end.setblocking(False)
        worker = _Worker(index, pid, parent_end)
        self.workers[index] = worker
        self.selector.register(parent_end, selectors.EVENT_READ, worker)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not all(worker.ready for worker in self.workers.values()):
            if time.monotonic() > deadline:
                self._stop_all()
                raise StartupError("the worker processes did not start within %d s"
                                   % START_SECONDS)
            self._poll(1.0, starting=True)

    # -- serve -------------------------------------------------------------------------------

    def _serve(self) -> int:
        code = 0
        while not self.stopping:
            timeout = None
            if self.sweeps:
                timeout = max(0.0, self.sweeps[0][0] - time.monotonic())
            code = self._poll(timeout) or code
            now = time.monotonic()
            while self.sweeps and self.sweeps[0][0] <= now:
                self._sweep(self.sweeps.pop(0)[1])
        notify_systemd("STOPPING=1")
        self.log.event("stopping", "Stopping: finishing requests in flight")
        self._stop_all()
        return code

    def _poll(self, timeout: Optional[float], starting: bool = False) -> int:
        code = 0
        for key, _events in self.selector.select(timeout):
            if key.data is None:
                code = self._signals(starting) or code
            else:
                self._read(key.data)
        return code

    def _signals(self, starting: bool) -> int:
        try:
            numbers = os.read(self._wake_r, 512)
        except BlockingIOError:
            return 0
        code = 0
        for number in numbers:
            if number in (signal.SIGTERM, signal.SIGINT):
                if starting:
                    self._stop_all()
                    raise SystemExit(0)
                self.stopping = True
            elif number == signal.SIGHUP and not starting:
                self._reload()
            elif number == signal.SIGCHLD:
                code = self._reap(starting) or code
        return code

    def _reap(self, starting: bool) -> int:
        """Collect the workers that ended; start others in their place."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return 0
            if pid == 0:
                return 0
            worker = next((w for w in self.workers.values() if w.pid == pid), None)
            if worker is None:
                continue
            self._forget(worker)
            how = ("exit code %d" % os.waitstatus_to_exitcode(status)
                   if os.WIFEXITED(status) else "signal %d" % os.WTERMSIG(status))
            if starting:
                self._stop_all()
                raise StartupError("worker process %d ended while starting (%s): see the lines "
                                   "above" % (worker.index, how))
            if self.stopping:
                continue
            now = time.monotonic()
            self.restarts = [when for when in self.restarts if now - when < RESTART_WINDOW]
            self.restarts.append(now)
            if len(self.restarts) > RESTARTS_MAX:
                self.log.error("worker_restarts", "Worker processes ended %d times within %d s: "
                               "stopping" % (len(self.restarts), RESTART_WINDOW))
                self.stopping = True
                return 1
            self.log.error("worker_ended", "Worker process %d (pid %d) ended (%s): starting "
                           "another" % (worker.index, pid, how), worker=worker.index, pid=pid)
            if not self.settings.disable_delete:
                self.sweeps.append((now + self.settings.delete_after + 1.0, time.time_ns()))
            self._start(worker.index)

    def _forget(self, worker: _Worker) -> None:
        self.workers.pop(worker.index, None)
        try:
            self.selector.unregister(worker.control)
        except (KeyError, ValueError):
            pass
        worker.control.close()

    def _read(self, worker: _Worker) -> None:
        try:
            data = worker.control.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            try:
                self.selector.unregister(worker.control)
            except (KeyError, ValueError):
                pass
            return  # its exit comes as SIGCHLD
        worker.received.extend(data)
        while b"\n" in worker.received:
            line, _newline, rest = bytes(worker.received).partition(b"\n")
            worker.received[:] = rest
            self._message(worker, json.loads(line))

    def _message(self, worker: _Worker, message: Dict[str, Any]) -> None:
        if "ready" in message:
            worker.ready = True
            return
        if self.reloading is None:
            return
        waiting = self.reloading["waiting"]
        waiting.discard(worker.index)
        if "reload_failed" in message:
            self.reloading["failures"].append("worker %d: %s"
                                              % (worker.index, message["reload_failed"]))
        if not waiting:
            self._reloaded()

    # -- reload ------------------------------------------------------------------------------

    def _reload(self) -> None:
        metrics = self.server.metrics
        notify_systemd("RELOADING=1")
        try:
            material = read_key_material(self.settings)
            signer = signer_from(material, self.settings)  # a key that does not load stops here
            parse_groups(material.groups, self.settings.groups_file or "")
        except Exception as error:  # noqa: BLE001 - whatever fails, the old key serves on
            metrics.key_reload_failures += 1
            self.log.error("reload_failed", "Reload failed, the previous key stays in use: %s"
                           % _reason(error))
            notify_systemd("READY=1")
            return
        message = {"reload": [None if value is None else base64.b64encode(value).decode("ascii")
                              for value in (material.key, material.passphrase, material.groups)]}
        self.reloading = {"signer": signer, "waiting": set(self.workers), "failures": []}
        for worker in list(self.workers.values()):
            _send_line(worker.control, message)
        if not self.workers:
            self._reloaded()

    def _reloaded(self) -> None:
        reloading, self.reloading = self.reloading, None
        metrics = self.server.metrics
        signer = reloading["signer"]
        if reloading["failures"]:
            metrics.key_reload_failures += 1
            self.log.error("reload_failed", "Reload failed in part: %s"
                           % "; ".join(reloading["failures"]))
        else:
            metrics.key_reloads += 1
            metrics.key_loaded(key_identity(signer))
            self.log.event("reloaded", "Reloaded key kid=%s (%s)"
                           % (signer.kid, signer.algorithm),
                           kid=signer.kid, algorithm=signer.algorithm)
        notify_systemd("READY=1")

    # -- stop --------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        """SIGTERM to every worker; wait for them to drain and delete their files."""
        for worker in self.workers.values():
            _kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.server_drain_seconds() + STOP_GRACE_SECONDS
        while self.workers and time.monotonic() < deadline:
            for worker in list(self.workers.values()):
                try:
                    pid, _status = os.waitpid(worker.pid, os.WNOHANG)
                except ChildProcessError:
                    pid = worker.pid
                if pid:
                    self._forget(worker)
            if self.workers:
                time.sleep(0.02)
        for worker in list(self.workers.values()):
            _kill(worker.pid, signal.SIGKILL)
            try:
                os.waitpid(worker.pid, 0)
            except ChildProcessError:
                pass
            self._forget(worker)

    @staticmethod
    def server_drain_seconds() -> float:
        from .http import Limits  # the drain's bound, one home
        return Limits().drain_timeout

    def _sweep(self, before_ns: int) -> None:
        """Delete the token files written before ``before_ns`` (a dead worker's)."""
        directory = self.server.token_directory
        for entry in os.scandir(directory.fd):
            match = TOKEN_FILE.fullmatch(entry.name)
            if match is None or int(match.group("nanos")) >= before_ns:
                continue
            try:
                directory.remove(entry.name)
            except FileNotFoundError:
                continue
            except OSError as error:
                self.log.error("delete_failed", "Could not delete token %s: %s"
                               % (os.path.join(directory.path, entry.name), error.strerror))
                continue
            path = os.path.join(directory.path, entry.name)
            self.log.event("deleted", "Deleted token: %s" % path, path=path)


def _note_signal(_number: int, _frame: Any) -> None:
    """Signals are read from the wake-up pipe (signal.set_wakeup_fd); nothing to do here."""


def _kill(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except OSError as error:
        if error.errno != errno.ESRCH:
            raise
