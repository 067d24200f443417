# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""okera-authserver: mints per-user JWTs into group-readable files, as Okera's authserver does.

Drop-in: the same flags and defaults as Okera's binary (-p 5001, -d /tmp/tokens,
-k KEY, -a rsa512, --disable-delete, -g okera), ``GET /<user>`` answers the path
of a new token file, which is deleted 10 s later. Every flag can also come from
an ``OKERA_AUTHSERVER_<LONG_NAME>`` environment variable; flags win.
Start-up problems are one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import ipaddress
import json
import os
import signal
import socket
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .authserver_events import LOG_FORMATS, EventLog, Metrics
from .authserver_http import CallerPolicy, HttpServer, Limits
from .authserver_issuer import ClaimRules, PendingDeletions, TokenIssuer, remove_stale_files
from .errors import OkeraAuthError
from .keys import HAS_CRYPTO_LIBS, describe_key, load_private_key_file, read_key_file
from .tokens import Signer, parse_duration

ENV_PREFIX = "OKERA_AUTHSERVER_"
EXIT_USAGE = 2
# A signing thread whose RSA operation is done waits for the GIL to write the file; CPython's
# default 5 ms switch interval lets the event loop keep it that long. With 0.5 ms, alternating
# wrk runs on 2 busy cores gave 1,580 instead of 1,080 tokens/s on average (RS512, noisy).
GIL_SWITCH_INTERVAL = 0.0005


class StartupError(OkeraAuthError):
    """The server cannot start with the settings given."""


@dataclass
class Settings:
    port: int = 5001
    directory: str = "/tmp/tokens"
    private_key: str = ""
    algorithm: str = "rsa512"
    disable_delete: bool = False
    group: str = "okera"
    private_key_passphrase_file: Optional[str] = None
    bind: str = "127.0.0.1"
    ttl: int = 24 * 3600
    delete_after: int = 10
    issuer: Optional[str] = None
    audience: List[str] = field(default_factory=list)
    claims: Dict[str, Any] = field(default_factory=dict)
    groups_file: Optional[str] = None
    unix_socket: Optional[str] = None
    allowed_uids: List[int] = field(default_factory=list)
    allowed_gids: List[int] = field(default_factory=list)
    no_tcp: bool = False
    file_mode: int = 0o640
    log_format: str = "text"
    workers: int = 0
    header_timeout: int = 10
    max_connections: int = 512
    no_jti: bool = False


def usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _env(name: str) -> Optional[str]:
    value = os.environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else None


def _env_bool(name: str) -> bool:
    value = _env(name)
    if value is None:
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise StartupError("%s%s=%r is not true or false" % (ENV_PREFIX, name, value))


def _id_list(text: str, what: str) -> List[int]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not all(item.isdigit() for item in items):
        raise StartupError("%s %r must be comma-separated numbers, e.g. 1000,1001" % (what, text))
    return [int(item) for item in items]


def _octal_mode(text: str) -> int:
    digits = text.strip().lower()
    digits = digits[2:] if digits.startswith("0o") else digits
    if not digits or any(char not in "01234567" for char in digits) or int(digits, 8) > 0o777:
        raise StartupError("file mode %r is not an octal mode such as 0640" % text)
    return int(digits, 8)


def _claim(text: str) -> tuple:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise StartupError("claim %r is not KEY=VALUE" % text)
    try:
        return name.strip(), json.loads(value)
    except ValueError:
        return name.strip(), value


def _json_object(text: str) -> Dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise StartupError("%sCLAIMS must be a JSON object, e.g. {\"tenant\": \"a\"}" % ENV_PREFIX)
    return document


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okera-authserver",
        description="Mint per-user JWTs into group-readable token files on request: "
                    "GET /<user> answers the path of a new token file. Every option can also "
                    "be set by an environment variable OKERA_AUTHSERVER_<LONG_NAME> "
                    "(e.g. OKERA_AUTHSERVER_PORT); options win over the environment.")
    add = parser.add_argument
    add("-p", "--port", type=int, default=None,
        help="TCP port on the loopback address (default 5001; 0 picks a free port)")
    add("-d", "--directory", default=None,
        help="directory of the token files, created 0750 if missing (default /tmp/tokens)")
    add("-k", "--private-key", default=None,
        help="private key file: PEM (PKCS#1, PKCS#8, encrypted), OpenSSH, or base64 of PEM "
             "(required)")
    add("-a", "--algorithm", default=None,
        help="signing algorithm: rsa512 (default), rsa256, or a JWA name "
             "(RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)")
    add("--disable-delete", action="store_true", default=None,
        help="keep token files instead of deleting them after --delete-after")
    add("-g", "--group", default=None,
        help="group (name or numeric gid) that owns the token files (default okera)")
    add("--private-key-passphrase-file", default=None,
        help="file holding the passphrase of an encrypted private key")
    add("--bind", default=None,
        help="loopback address to listen on: 127.0.0.0/8 or ::1 (default 127.0.0.1)")
    add("--ttl", default=None, help="token lifetime: 24h (default), 30d, 90m, 45s or seconds")
    add("--delete-after", default=None,
        help="delete each token file this long after it is written (default 10s)")
    add("--issuer", default=None, help="iss claim of every token")
    add("--audience", action="append", default=None,
        help="aud claim; repeat for several audiences")
    add("--claim", action="append", default=None, metavar="KEY=VALUE",
        help="extra static claim (VALUE read as JSON when it parses); repeatable")
    add("--groups-file", default=None,
        help='JSON object mapping user names to group lists, e.g. {"janedoe": ["analysts"]}; '
             "reloaded on SIGHUP")
    add("--unix-socket", default=None,
        help="also listen on this Unix socket (mode 0660, owned by --group)")
    add("--allowed-uids", default=None,
        help="comma-separated uids allowed on the Unix socket (checked by SO_PEERCRED)")
    add("--allowed-gids", default=None,
        help="comma-separated primary gids allowed on the Unix socket")
    add("--no-tcp", action="store_true", default=None,
        help="serve only on the Unix socket")
    add("--file-mode", default=None, help="mode of the token files, octal (default 0640)")
    add("--log-format", default=None, choices=LOG_FORMATS,
        help="one line per event as text (default) or JSON; tokens are never logged")
    add("--workers", type=int, default=None,
        help="signing threads (default: the number of CPUs the process may use)")
    add("--no-jti", action="store_true", default=None,
        help="leave out the jti claim (a random token id, added by default)")
    add("--header-timeout", default=None,
        help="a request head must arrive within this time, else the connection is closed "
             "(default 10s)")
    add("--max-connections", type=int, default=None,
        help="open client connections at most; more are answered 503 (default 512)")
    return parser


def parse_settings(argv: Optional[Sequence[str]] = None) -> Settings:
    """Settings from flags, then OKERA_AUTHSERVER_* variables, then defaults."""
    args = build_parser().parse_args(argv)
    defaults = Settings()

    def pick(flag: Any, env_name: str, default: Any) -> Any:
        return flag if flag is not None else (_env(env_name) if _env(env_name) is not None else default)

    def integer(value: Any, what: str) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise StartupError("%s %r is not a whole number" % (what, value)) from None

    settings = Settings(
        port=integer(pick(args.port, "PORT", defaults.port), "port"),
        directory=pick(args.directory, "DIRECTORY", defaults.directory),
        private_key=pick(args.private_key, "PRIVATE_KEY", ""),
        algorithm=pick(args.algorithm, "ALGORITHM", defaults.algorithm),
        disable_delete=bool(args.disable_delete) or _env_bool("DISABLE_DELETE"),
        group=pick(args.group, "GROUP", defaults.group),
        private_key_passphrase_file=pick(args.private_key_passphrase_file,
                                         "PRIVATE_KEY_PASSPHRASE_FILE", None),
        bind=pick(args.bind, "BIND", defaults.bind),
        ttl=parse_duration(pick(args.ttl, "TTL", defaults.ttl)),
        delete_after=parse_duration(pick(args.delete_after, "DELETE_AFTER",
                                         defaults.delete_after)),
        issuer=pick(args.issuer, "ISSUER", None),
        groups_file=pick(args.groups_file, "GROUPS_FILE", None),
        unix_socket=pick(args.unix_socket, "UNIX_SOCKET", None),
        no_tcp=bool(args.no_tcp) or _env_bool("NO_TCP"),
        no_jti=bool(args.no_jti) or _env_bool("NO_JTI"),
        file_mode=_octal_mode(pick(args.file_mode, "FILE_MODE", "0640")),
        log_format=pick(args.log_format, "LOG_FORMAT", defaults.log_format),
        workers=integer(pick(args.workers, "WORKERS", usable_cpus()), "workers"),
        header_timeout=parse_duration(pick(args.header_timeout, "HEADER_TIMEOUT",
                                           defaults.header_timeout)),
        max_connections=integer(pick(args.max_connections, "MAX_CONNECTIONS",
                                     defaults.max_connections), "max-connections"),
    )
    if args.audience is not None:
        settings.audience = list(args.audience)
    elif _env("AUDIENCE"):
        settings.audience = [item.strip() for item in _env("AUDIENCE").split(",") if item.strip()]
    if args.claim is not None:
        settings.claims = dict(_claim(text) for text in args.claim)
    elif _env("CLAIMS"):
        settings.claims = _json_object(_env("CLAIMS"))
    uids = args.allowed_uids if args.allowed_uids is not None else _env("ALLOWED_UIDS")
    gids = args.allowed_gids if args.allowed_gids is not None else _env("ALLOWED_GIDS")
    settings.allowed_uids = _id_list(uids, "allowed uids") if uids else []
    settings.allowed_gids = _id_list(gids, "allowed gids") if gids else []
    _check_settings(settings)
    return settings


def _check_settings(settings: Settings) -> None:
    if not settings.private_key:
        raise StartupError("no private key given: use -k/--private-key PATH "
                           "(or OKERA_AUTHSERVER_PRIVATE_KEY)")
    if not 0 <= settings.port <= 65535:
        raise StartupError("port %d is not between 0 and 65535" % settings.port)
    if settings.log_format not in LOG_FORMATS:
        raise StartupError("log format %r is not text or json" % settings.log_format)
    if settings.workers < 1 or settings.max_connections < 1:
        raise StartupError("workers and max-connections must be at least 1")
    if settings.no_tcp and not settings.unix_socket:
        raise StartupError("--no-tcp needs --unix-socket PATH, else nothing would be served")
    if (settings.allowed_uids or settings.allowed_gids) and not settings.unix_socket:
        raise StartupError("--allowed-uids/--allowed-gids apply to the Unix socket: "
                           "give --unix-socket PATH too")
    settings.bind = loopback_address(settings.bind)


def loopback_address(text: str) -> str:
    """``text`` if it is a loopback address; 'localhost' means 127.0.0.1."""
    if text.strip().lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        raise StartupError("bind address %r is not an IP address: use 127.0.0.1 or ::1"
                           % text) from None
    if not address.is_loopback:
        raise StartupError("bind address %s is not a loopback address: the server only "
                           "listens on 127.0.0.0/8 or ::1" % address)
    return str(address)


def resolve_group(group: str) -> int:
    """The gid of a group name or a numeric gid."""
    text = str(group).strip()
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise StartupError("group %r does not exist: create it (groupadd %s) or give another "
                           "with -g/--group NAME|GID" % (text, text)) from None


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


def check_group_usable(directory: str, gid: int) -> None:
    """Prove that files can be given to the group, before the first request needs it."""
    probe = os.path.join(directory, ".okera-authserver-probe.%d" % os.getpid())
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise StartupError("cannot create files in %s: %s" % (directory, error.strerror)) from None
    try:
        os.fchown(descriptor, -1, gid)
    except PermissionError:
        raise StartupError("cannot give token files to gid %d: run as root or as a member of "
                           "the group" % gid) from None
    finally:
        os.close(descriptor)
        os.unlink(probe)


def load_signer(settings: Settings) -> Signer:
    passphrase = None
    if settings.private_key_passphrase_file:
        passphrase = read_key_file(settings.private_key_passphrase_file,
                                   "passphrase").rstrip(b"\r\n")
    key = load_private_key_file(settings.private_key, passphrase)
    return Signer(key, settings.algorithm)


def load_groups(path: Optional[str]) -> Dict[str, List[str]]:
    if not path:
        return {}
    try:
        with open(path, "rb") as handle:
            document = json.loads(handle.read().decode("utf-8"))
    except OSError as error:
        raise StartupError("groups file %s cannot be read: %s" % (path, error.strerror)) from None
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
    """The daemon: the issuer, its listeners, and what signals do to them."""

    def __init__(self, settings: Settings, log: EventLog) -> None:
        self.settings = settings
        self.log = log
        self.metrics = Metrics()
        self.gid = resolve_group(settings.group)
        _key_mode_warning(settings.private_key, log)
        signer = load_signer(settings)
        prepare_directory(settings.directory, self.gid, log)
        check_group_usable(settings.directory, self.gid)
        self.issuer = TokenIssuer(
            settings.directory, signer,
            ClaimRules(ttl=settings.ttl, issuer=settings.issuer,
                       audience=tuple(settings.audience), claims=settings.claims,
                       jti=not settings.no_jti),
            load_groups(settings.groups_file), settings.file_mode, self.gid)
        self.stopping: Optional[asyncio.Event] = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        settings = self.settings
        for path in remove_stale_files(settings.directory, tokens_too=not settings.disable_delete):
            self.log.event("stale_removed", "Removed stale file: %s" % path, path=path)
        deletions = None
        if not settings.disable_delete:
            deletions = PendingDeletions(loop, settings.delete_after, self._deleted)
        executor = ThreadPoolExecutor(max_workers=settings.workers,
                                      thread_name_prefix="okera-authserver-sign")
        server = HttpServer(self.issuer, executor, self.log, self.metrics, deletions,
                            Limits(header_timeout=settings.header_timeout,
                                   max_connections=settings.max_connections),
                            CallerPolicy(frozenset(settings.allowed_uids),
                                         frozenset(settings.allowed_gids)))
        if not settings.no_tcp:
            try:
                port = await server.listen_tcp(settings.bind, settings.port)
            except OSError as error:
                raise StartupError("cannot listen on %s port %d: %s"
                                   % (settings.bind, settings.port, error.strerror)) from None
            host = "[%s]" % settings.bind if ":" in settings.bind else settings.bind
            self.log.event("listening", "Listening on http://%s:%d" % (host, port),
                           address=settings.bind, port=port)
        if settings.unix_socket:
            await self._listen_unix(server, settings.unix_socket)
        signer = self.issuer.signer
        self.log.event("ready", "Signing with %s key kid=%s (%s); token files in %s"
                       % (describe_key(signer.private_key), signer.kid, signer.algorithm,
                          settings.directory), kid=signer.kid, algorithm=signer.algorithm)
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload(executor)))
        notify_systemd("READY=1")
        await self.stopping.wait()
        notify_systemd("STOPPING=1")
        self.log.event("stopping", "Stopping: finishing requests in flight")
        await server.drain()
        if deletions is not None:
            deletions.delete_all_now()
        executor.shutdown(wait=True)
        if settings.unix_socket:
            _remove_socket(settings.unix_socket)
        self.log.event("stopped", "Stopped")

    async def _listen_unix(self, server: HttpServer, path: str) -> None:
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)  # left by a previous run
            else:
                raise StartupError("%s exists and is not a socket: remove it or choose another "
                                   "--unix-socket path" % path)
        except FileNotFoundError:
            pass
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
        self.log.event("listening", "Listening on unix:%s" % path, socket=path)

    def _deleted(self, path: str, failure: Optional[str]) -> None:
        if failure:
            self.log.error("delete_failed", "Could not delete token %s: %s" % (path, failure),
                           path=path)
        else:
            self.log.event("deleted", "Deleted token: %s" % path, path=path)

    async def reload(self, executor: ThreadPoolExecutor) -> None:
        """Load the key and groups file again; on any problem keep the current ones."""
        loop = asyncio.get_running_loop()
        notify_systemd("RELOADING=1")
        try:
            signer = await loop.run_in_executor(executor, load_signer, self.settings)
            groups = load_groups(self.settings.groups_file)
        except OkeraAuthError as error:
            self.metrics.key_reload_failures += 1
            self.log.error("reload_failed", "Reload failed, the previous key stays in use: %s"
                           % error)
            notify_systemd("READY=1")
            return
        self.issuer.replace_signer(signer)
        self.issuer.groups = groups
        self.metrics.key_reloads += 1
        notify_systemd("READY=1")
        self.log.event("reloaded", "Reloaded key kid=%s (%s)" % (signer.kid, signer.algorithm),
                       kid=signer.kid, algorithm=signer.algorithm)


def _remove_socket(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fail(message: str) -> None:
    sys.stderr.write("okera-authserver: %s\n" % message)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        settings = parse_settings(argv)
    except OkeraAuthError as error:
        _fail(str(error))
        return EXIT_USAGE
    log = EventLog(settings.log_format)
    if not HAS_CRYPTO_LIBS:
        _fail("PyJWT and cryptography are required: pip install okera-auth")
        return EXIT_USAGE
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        server = AuthServer(settings, log)
        asyncio.run(server.run())
    except OkeraAuthError as error:
        _fail(str(error))
        return EXIT_USAGE
    except OSError as error:  # the environment changed under the server while it started
        _fail("%s%s" % (error.strerror or error, " (%s)" % error.filename if error.filename else ""))
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
