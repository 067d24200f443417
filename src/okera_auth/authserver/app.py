# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The auth server's life: start (group, directory, key, groups file), listen, reload, drain."""

from __future__ import annotations

import asyncio
import base64
import grp
import json
import os
import re
import resource
import signal
import socket
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from okera_auth.module_utils.errors import OkeraAuthError, shown
from okera_auth.module_utils.files import read_bounded
from okera_auth.module_utils.keys import describe_key, load_private_key
from okera_auth.module_utils.tokens import Signer
from .events import EventLog, Metrics, MetricsTable, key_identity
from .http import CallerPolicy, HttpServer, Limits
from .issuer import ClaimRules, PendingDeletions, TokenDirectory, TokenIssuer, remove_stale_files
from .options import StartupError, numeric_id, parse_json

# Descriptors the server needs besides its connections: stdio, the event loop, listeners, the
# token directory, the key and groups files on reload, the systemd socket, and one token file
# per signing thread (added per worker).
FD_RESERVE = 32


def resolve_group(group: str) -> int:
    """The gid of a group name or a numeric gid."""
    text = str(group).strip()
    if text.isdigit():
        return numeric_id(text, "group")
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise StartupError("group %s does not exist: create it (groupadd %s) or give another "
                           "with -g/--group NAME|GID" % (shown(text), shown(text).strip("'"))) from None


def prepare_directory(directory: str, gid: int, log: EventLog) -> None:
    """Create the token directory 0750 owned by the group, or check the existing one."""
    try:
        os.mkdir(directory, 0o750)
    except FileExistsError:
        pass
    except OSError as error:
        raise StartupError("cannot create the token directory %s: %s"
                           % (directory, error.strerror)) from None
    else:
        os.chmod(directory, 0o750)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise StartupError("token directory %s is not a directory (a symlink or a file?)"
                           % directory)
    if info.st_uid not in (os.geteuid(), 0):
        # Whoever owns the directory can swap the files clients are about to read.
        raise StartupError("token directory %s belongs to uid %d: it must belong to the server's "
                           "user or root (a directory someone else made in /tmp is a trap)"
                           % (directory, info.st_uid))
    if info.st_uid == os.geteuid() and info.st_gid != gid:
        try:
            os.chown(directory, -1, gid)
        except PermissionError:
            raise StartupError("cannot give %s to gid %d: run as root or as a member of the "
                               "group" % (directory, gid)) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StartupError("token directory %s is not writable by this user" % directory)
    if info.st_mode & 0o002 and not info.st_mode & stat.S_ISVTX:
        log.warning("directory_mode", "token directory %s is writable by everyone: "
                    "make it 0750" % directory, path=directory)


def open_token_directory(directory: str) -> TokenDirectory:
    """Hold the checked directory open: token files go through this handle from now on."""
    token_directory = TokenDirectory(directory)
    problem = token_directory.problem()  # swapped between the checks and the open?
    if problem:
        token_directory.close()
        raise StartupError(problem)
    return token_directory


def check_group_usable(directory: TokenDirectory, gid: int) -> None:
    """Prove that files can be given to the group, before the first request needs it (and
    learn whether new files are born in it, so that token files need no fchown)."""
    try:
        directory.probe(gid)
    except PermissionError as error:
        if error.filename is None and error.errno == 1:  # fchown: EPERM
            raise StartupError("cannot give token files to gid %d: run as root or as a member "
                               "of the group" % gid) from None
        raise StartupError("cannot create files in %s: %s"
                           % (directory.path, error.strerror)) from None
    except OSError as error:
        raise StartupError("cannot create files in %s: %s"
                           % (directory.path, error.strerror)) from None


@dataclass(frozen=True)
class KeyMaterial:
    """The bytes of the key, its passphrase and the groups file, read once: a supervisor reads
    them on SIGHUP and hands the same bytes to every worker process."""

    key: bytes
    passphrase: Optional[bytes] = None
    groups: Optional[bytes] = None


def read_key_material(settings: Any) -> KeyMaterial:
    passphrase = None
    if settings.private_key_passphrase_file:
        passphrase = read_bounded(settings.private_key_passphrase_file,
                                  "passphrase").rstrip(b"\r\n")
    groups = read_bounded(settings.groups_file, "groups") if settings.groups_file else None
    if getattr(settings, "private_key_secret_id", None):
        from .aws import fetch_secret_string  # boto3 only when asked for

        key = fetch_secret_string(settings.private_key_secret_id, settings.aws_region, settings.aws_endpoint_url)
    else:
        key = read_bounded(settings.private_key, "private key")
    return KeyMaterial(key, passphrase, groups)


def signer_from(material: KeyMaterial, settings: Any) -> Signer:
    # The server's own key (its -k file or its secret): proven by a signature instead of
    # OpenSSL's slow RSA check, see keys.load_private_key.
    return Signer(load_private_key(material.key, material.passphrase, own_key=True),
                  settings.algorithm)


def load_signer(settings: Any) -> Signer:
    return signer_from(read_key_material(settings), settings)


def load_signer_and_groups(settings: Any) -> Tuple[Signer, Dict[str, List[str]]]:
    """What a reload reads: the key (and passphrase) and the groups file, all or nothing."""
    material = read_key_material(settings)
    return signer_from(material, settings), parse_groups(material.groups, settings.groups_file or "")


def in_daemon_thread(function: Any, *args: Any) -> "asyncio.Future[Any]":
    """``function(*args)`` in a thread of its own that never holds up the exit: a reload stuck
    in a read (a hung file system) must not keep a stopping server alive, as a thread of an
    executor would (asyncio.run and executor.shutdown wait for those)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(value: Any, error: Optional[BaseException]) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def target() -> None:
        try:
            value, error = function(*args), None
        except Exception as failure:  # noqa: BLE001 - handed to the awaiting task
            value, error = None, failure
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:
            pass  # the loop is closed: the server stopped meanwhile

    threading.Thread(target=target, name="okera-authserver-reload", daemon=True).start()
    return future


def load_groups(path: Optional[str]) -> Dict[str, List[str]]:
    if not path:
        return {}
    return parse_groups(read_bounded(path, "groups"), path)


def parse_groups(data: Optional[bytes], path: str) -> Dict[str, List[str]]:
    if data is None:
        return {}
    try:
        document = parse_json(data.decode("utf-8"), "groups file %s" % path)
    except ValueError:
        raise StartupError("groups file %s is not JSON: give an object such as "
                           "{\"janedoe\": [\"analysts\"]}" % path) from None
    if not isinstance(document, dict) or not all(
            isinstance(groups, list) and all(isinstance(name, str) for name in groups)
            for groups in document.values()):
        raise StartupError("groups file %s must map each user to a list of group names" % path)
    return document


def _key_mode_warning(path: str, log: EventLog) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & 0o044:
        log.warning("key_mode", "private key %s is readable by group or others (mode %04o): "
                    "chmod 600 it" % (path, stat.S_IMODE(mode)), path=path)


def connection_budget(max_connections: int, workers: int, log: EventLog) -> int:
    """How many connections the open-files limit can hold: --max-connections, or fewer.

    Each connection is a descriptor; the server keeps FD_RESERVE + workers for its own. A soft
    limit below that is raised towards the hard limit (an unprivileged process may); when even
    the hard limit is too low, the cap is lowered, with one warning line, so that connections
    can never take the descriptors token files need.
    """
    reserve = FD_RESERVE + workers
    wanted = max_connections + reserve
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return max_connections
    unlimited = resource.RLIM_INFINITY
    if soft != unlimited and soft < wanted:
        raised = wanted if hard == unlimited else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (OSError, ValueError):
            pass  # e.g. a seccomp filter without @resources: keep the soft limit
    if soft == unlimited or soft >= wanted:
        return max_connections
    budget = max(1, soft - reserve)
    log.warning("open_files_limit", "The open-files limit (%d) cannot hold --max-connections %d "
                "plus the server's own %d descriptors: at most %d connections are open at once "
                "(raise LimitNOFILE or ulimit -n)" % (soft, max_connections, reserve, budget),
                limit=soft, max_connections=budget)
    return budget


def notify_systemd(state: str) -> None:
    """Tell systemd (Type=notify units) about READY=1 / RELOADING=1 / STOPPING=1; else nothing."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract socket namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notifier:
            notifier.sendto(state.encode("ascii"), address)
    except OSError:
        pass  # readiness is a courtesy; serving does not depend on it


class AuthServer:
    """The daemon: the issuer, its listeners, and what signals do to them.

    Everything that can fail at start is done here, once, before any worker process exists:
    the group, the key, the groups file, the directory (opened and probed). ``run`` then
    serves in this process (--processes 1); with more, supervisor.Supervisor forks the
    workers, each of which runs ``run_worker`` with a copy of all of it.
    """

    def __init__(self, settings: Any, log: EventLog) -> None:
        self.settings = settings
        self.log = log
        self.processes = getattr(settings, "processes", 1) or 1
        self.metrics = Metrics(MetricsTable(self.processes))
        self.gid = resolve_group(settings.group)
        signer = load_signer(settings)
        if settings.private_key:
            _key_mode_warning(settings.private_key, log)  # of a key that is one
        self.metrics.key_loaded(key_identity(signer))
        groups = load_groups(settings.groups_file)
        prepare_directory(settings.directory, self.gid, log)
        self.token_directory = open_token_directory(settings.directory)
        check_group_usable(self.token_directory, self.gid)
        self.issuer = TokenIssuer(
            settings.directory, signer,
            ClaimRules(ttl=settings.ttl, issuer=settings.issuer,
                       audience=tuple(settings.audience), claims=settings.claims,
                       jti=not settings.no_jti),
            groups, settings.file_mode, self.gid, token_directory=self.token_directory)
        # --max-connections is the whole server's: each worker process takes its share.
        share = -(-settings.max_connections // self.processes)
        self.max_connections = connection_budget(share, settings.workers, log)
        self.stopping: Optional[asyncio.Event] = None
        self.worker: Optional[int] = None  # the index of this worker process, if one

    def remove_stale_files(self) -> None:
        settings = self.settings
        for path in remove_stale_files(settings.directory, tokens_too=not settings.disable_delete,
                                       dir_fd=self.token_directory.fd):
            self.log.event("stale_removed", "Removed stale file: %s" % path, path=path)

    def _serve(self, loop: asyncio.AbstractEventLoop
               ) -> Tuple[HttpServer, Optional[PendingDeletions], Optional[ThreadPoolExecutor]]:
        settings = self.settings
        deletions = None
        if not settings.disable_delete:
            deletions = PendingDeletions(loop, settings.delete_after, self._deleted,
                                         remove=self.token_directory.remove)
        executor = None
        if settings.workers:
            executor = ThreadPoolExecutor(max_workers=settings.workers,
                                          thread_name_prefix="okera-authserver-sign")
        server = HttpServer(self.issuer, executor, self.log, self.metrics, deletions,
                            Limits(header_timeout=settings.header_timeout,
                                   max_connections=self.max_connections),
                            CallerPolicy(frozenset(settings.allowed_uids),
                                         frozenset(settings.allowed_gids)))
        server.loop = loop
        loop.set_exception_handler(server.loop_exception)
        # The lines of deleted files are written together every few milliseconds.
        self.log.buffer_with(loop.call_later)
        return server, deletions, executor

    def log_serving(self, port: Optional[int]) -> None:
        """The lines that say the server serves: Okera's first, word for word, then ours."""
        settings = self.settings
        self.log.event("started", "Listening on - writing to '%s'" % settings.directory,
                       directory=settings.directory)
        if port is not None:
            host = "[%s]" % settings.bind if ":" in settings.bind else settings.bind
            self.log.event("listening", "Listening on http://%s:%d" % (host, port),
                           address=settings.bind, port=port)
        if settings.unix_socket:
            self.log.event("listening", "Listening on unix:%s" % settings.unix_socket,
                           socket=settings.unix_socket)
        signer = self.issuer.signer
        self.log.event("ready", "Signing with %s key kid=%s (%s); token files in %s%s"
                       % (describe_key(signer.private_key), signer.kid, signer.algorithm,
                          settings.directory, "; %d worker processes" % self.processes
                          if self.processes > 1 else ""),
                       kid=signer.kid, algorithm=signer.algorithm, processes=self.processes)

    async def run(self) -> None:
        """Serve in this one process until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        settings = self.settings
        self.remove_stale_files()
        server, deletions, executor = self._serve(loop)
        port = None
        if not settings.no_tcp:
            try:
                port = await server.listen_tcp(settings.bind, settings.port)
            except OSError as error:
                raise StartupError("cannot listen on %s port %d: %s"
                                   % (settings.bind, settings.port, error.strerror)) from None
        if settings.unix_socket:
            await self._listen_unix(server, settings.unix_socket)
        self.log_serving(port)
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        notify_systemd("READY=1")
        await self.stopping.wait()
        notify_systemd("STOPPING=1")
        self.log.event("stopping", "Stopping: finishing requests in flight")
        await self._drain(server, deletions, executor)
        if settings.unix_socket:
            _remove_socket(settings.unix_socket)
        self.log.event("stopped", "Stopped")
        self.log.buffer_with(None)

    async def _drain(self, server: HttpServer, deletions: Optional[PendingDeletions],
                     executor: Optional[ThreadPoolExecutor]) -> None:
        await server.drain()
        if deletions is not None:
            deletions.delete_all_now()
        if executor is not None:
            executor.shutdown(wait=True)
        self.log.flush()

    async def run_worker(self, index: int, control: socket.socket, port: Optional[int],
                         unix_listener: Optional[socket.socket]) -> None:
        """One worker process of a supervisor: serve on the shared port (SO_REUSEPORT) and the
        shared Unix socket, reload when the supervisor says so (with the bytes it read), drain
        and delete this process's token files on SIGTERM. Lines about the whole server
        (listening, reloads, stopping) are the supervisor's."""
        loop = asyncio.get_running_loop()
        self.worker = index
        self.metrics = Metrics(self.metrics.table, index)
        self.metrics.restart_row()
        self.metrics.key_loaded(key_identity(self.issuer.signer), shared=False)
        self.stopping = asyncio.Event()
        settings = self.settings
        server, deletions, executor = self._serve(loop)
        if port is not None:
            await server.listen_tcp(settings.bind, port, reuse_port=True)
        if unix_listener is not None:
            await server.serve_unix_socket(unix_listener)
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        control.setblocking(False)
        received = bytearray()

        def on_control() -> None:
            try:
                data = control.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the supervisor is gone: stop too
                loop.remove_reader(control.fileno())
                self.stopping.set()
                return
            received.extend(data)
            while b"\n" in received:
                line, _newline, rest = bytes(received).partition(b"\n")
                received[:] = rest
                loop.create_task(self._worker_message(json.loads(line), control))

        loop.add_reader(control.fileno(), on_control)

        def publish() -> None:
            server.publish_gauges()
            if not self.stopping.is_set():
                loop.call_later(1.0, publish)

        publish()
        _send_line(control, {"ready": index})
        await self.stopping.wait()
        await self._drain(server, deletions, executor)
        server.publish_gauges()
        self.log.buffer_with(None)

    async def _worker_message(self, message: Dict[str, Any], control: socket.socket) -> None:
        if "reload" not in message:
            return
        material = KeyMaterial(*(None if value is None else base64.b64decode(value)
                                 for value in message["reload"]))
        loop = asyncio.get_running_loop()
        try:
            signer = await loop.run_in_executor(None, signer_from, material, self.settings)
            groups = parse_groups(material.groups, self.settings.groups_file or "")
        except Exception as error:  # noqa: BLE001 - the supervisor says what failed
            _send_line(control, {"reload_failed": _reason(error)})
            return
        self.issuer.replace_signer(signer)
        self.issuer.groups = groups
        self.metrics.key_loaded(key_identity(signer), shared=False)
        _send_line(control, {"reloaded": signer.kid})

    async def _listen_unix(self, server: HttpServer, path: str) -> None:
        clear_socket_path(path)
        old_umask = os.umask(0o117)  # the socket is never reachable by others, not even briefly
        try:
            await server.listen_unix(path)
        except OSError as error:
            raise StartupError("cannot listen on the Unix socket %s: %s"
                               % (path, error.strerror)) from None
        finally:
            os.umask(old_umask)
        os.chown(path, -1, self.gid)
        os.chmod(path, 0o660)

    def _deleted(self, path: str, failure: Optional[str]) -> None:
        if failure:
            self.log.error("delete_failed", "Could not delete token %s: %s" % (path, failure),
                           path=path)
        else:
            self.log.event("deleted", "Deleted token: %s" % path, path=path)

    async def reload(self) -> None:
        """Load the key and groups file again; on any problem keep the current ones."""
        notify_systemd("RELOADING=1")
        try:
            signer, groups = await in_daemon_thread(load_signer_and_groups, self.settings)
        except Exception as error:  # noqa: BLE001 - whatever fails, the old key serves on
            self.metrics.key_reload_failures += 1
            self.log.error("reload_failed", "Reload failed, the previous key stays in use: %s"
                           % _reason(error))
            notify_systemd("READY=1")
            return
        self.issuer.replace_signer(signer)
        self.metrics.key_loaded(key_identity(signer))
        self.issuer.groups = groups
        self.metrics.key_reloads += 1
        notify_systemd("READY=1")
        self.log.event("reloaded", "Reloaded key kid=%s (%s)" % (signer.kid, signer.algorithm),
                       kid=signer.kid, algorithm=signer.algorithm)


def _reason(error: BaseException) -> str:
    return tidy_message(str(error)) if isinstance(error, OkeraAuthError) else (
        "unexpected %s" % type(error).__name__)


def tidy_message(text: str) -> str:
    """One line for the log: runs of white space as one space, none before ) , . : ;
    (a library's message quoted inside ours may end in a space or a newline)."""
    return re.sub(r"\s+([),.:;])", r"\1", " ".join(text.split()))


def _send_line(control: socket.socket, message: Dict[str, Any]) -> None:
    """One JSON line to the other end of a control socket (blocking until it is sent)."""
    data = (json.dumps(message) + "\n").encode("ascii")
    blocking = control.getblocking()
    control.setblocking(True)
    try:
        control.sendall(data)
    except OSError:
        pass  # the other end is gone; its exit is seen elsewhere
    finally:
        control.setblocking(blocking)


def clear_socket_path(path: str) -> None:
    """Make way for the Unix socket: remove one left by a previous run, refuse anything else."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
        else:
            raise StartupError("%s exists and is not a socket: remove it or choose another "
                               "--unix-socket path" % path)
    except FileNotFoundError:
        pass


def _remove_socket(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
