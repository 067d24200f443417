"""The daemon's defences without a server process: reserved names, the held token directory,
bounded input files, the connection budget, idle-connection eviction, rate-limited accept
failures, and the allow-list that TCP would bypass."""
from __future__ import annotations

import asyncio
import errno
import io
import os
import re
import socket
import threading
from pathlib import Path

import pytest

from okera_auth.authserver import app
from okera_auth.authserver.app import (
    connection_budget, load_groups, load_signer, open_token_directory,
)
from okera_auth.authserver.events import EventLog, Metrics
from okera_auth.authserver.http import (
    CallerPolicy, HttpServer, Limits, _Connection, names_endpoint_in_disguise,
)
from okera_auth.authserver.issuer import (
    ClaimRules, DirectoryChangedError, PendingDeletions, TokenDirectory, TokenIssuer,
    UserNameError, decode_user_name, remove_stale_files, validate_user_name,
)
from okera_auth.authserver.options import StartupError, parse_settings
from okera_auth.module_utils.errors import FileExistsWriteError, OkeraAuthError
from okera_auth.module_utils.files import read_bounded, write_file_atomic
from okera_auth.module_utils.tokens import Signer


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("OKERA_AUTHSERVER_"):
            monkeypatch.delenv(name)


# --- 5. reserved names -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["healthz", "metrics", "HEALTHZ", "Metrics", "mEtRiCs"])
def test_endpoint_names_are_never_user_names(name):
    with pytest.raises(UserNameError, match="name of an endpoint"):
        validate_user_name(name)


@pytest.mark.parametrize("raw", ["%68ealthz", "%68%65%61%6C%74%68%7A", "%6Detrics", "%4Detrics",
                                 "healt%68z", "METRIC%53"])
def test_endpoint_names_spelled_with_escapes_are_never_user_names(raw):
    with pytest.raises(UserNameError, match="name of an endpoint"):
        decode_user_name(raw)


@pytest.mark.parametrize("name", ["healthz-team", "metrics2", "my.metrics", "_healthz", "health"])
def test_names_that_only_resemble_an_endpoint_are_users(name):
    assert validate_user_name(name) == name


@pytest.mark.parametrize("path", [
    "/%68ealthz", "/%2Fmetrics", "/%2fmetrics", "/%2F%2Fhealthz", "/.%2Fhealthz", "/%2E/metrics",
    "/.well-known%2Fjwks.json", "/%2Ewell-known/jwks.json", "/.well-known/jwks%2Ejson",
    "/%2e%77ell-known", "/%48EALTHZ", "/metrics%2F", "/%6detrics/x",
])
def test_escaped_paths_naming_an_endpoint_are_caught(path):
    assert names_endpoint_in_disguise(path)


@pytest.mark.parametrize("path", [
    "/healthz", "/metrics", "/.well-known/jwks.json",  # plain spellings: routed, not refused
    "/jane%2Edoe", "/%68ealthz-team", "/a%2Fhealthz", "/%252Fmetrics", "/janedoe",
])
def test_other_paths_are_not_taken_for_endpoints(path):
    assert not names_endpoint_in_disguise(path)


# --- 9. an allow-list on the socket with TCP on ------------------------------------------------

@pytest.mark.parametrize("allow", [["--allowed-uids", "1000"], ["--allowed-gids", "1000"]])
def test_allow_list_with_tcp_on_is_refused(allow):
    with pytest.raises(StartupError) as caught:
        parse_settings(["-k", "k", "--unix-socket", "/s", *allow])
    message = str(caught.value)
    assert "--no-tcp" in message and "--allow-unchecked-tcp" in message and "\n" not in message


def test_allow_list_with_no_tcp_or_accepted_unchecked_tcp_starts(monkeypatch):
    assert parse_settings(["-k", "k", "--unix-socket", "/s", "--allowed-uids", "1",
                           "--no-tcp"]).no_tcp
    settings = parse_settings(["-k", "k", "--unix-socket", "/s", "--allowed-gids", "1",
                               "--allow-unchecked-tcp"])
    assert settings.allow_unchecked_tcp and not settings.no_tcp
    monkeypatch.setenv("OKERA_AUTHSERVER_ALLOWED_UIDS", "1")
    monkeypatch.setenv("OKERA_AUTHSERVER_ALLOW_UNCHECKED_TCP", "true")
    assert parse_settings(["-k", "k", "--unix-socket", "/s"]).allow_unchecked_tcp


def test_unchecked_tcp_is_off_by_default():
    assert parse_settings(["-k", "k"]).allow_unchecked_tcp is False


def test_allow_list_without_a_socket_says_so_first():
    with pytest.raises(StartupError, match="give --unix-socket"):
        parse_settings(["-k", "k", "--allowed-uids", "1", "--no-tcp"])


# --- 7. the token directory, held open ---------------------------------------------------------

@pytest.fixture
def held(tmp_path):
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o750)
    os.chmod(directory, 0o750)
    token_directory = TokenDirectory(str(directory))
    yield directory, token_directory
    token_directory.close()


def test_unchanged_directory_has_no_problem(held):
    directory, token_directory = held
    assert token_directory.problem() is None and token_directory.writable()
    path = token_directory.write("janedoe.1.token", b"t", 0o640, None)
    assert path == str(directory / "janedoe.1.token") and Path(path).read_bytes() == b"t"


def test_directory_swapped_for_a_symlink_is_refused_and_nothing_lands_there(held, tmp_path):
    directory, token_directory = held
    target = tmp_path / "elsewhere"
    target.mkdir()
    directory.rename(tmp_path / "moved")
    directory.symlink_to(target)
    assert "replaced by a symlink" in token_directory.problem()
    with pytest.raises(DirectoryChangedError, match="replaced by a symlink"):
        token_directory.write("janedoe.1.token", b"t", 0o640, None)
    assert list(target.iterdir()) == [] and list((tmp_path / "moved").iterdir()) == []


def test_writes_through_the_handle_land_in_the_directory_opened(held, tmp_path):
    """Even past the check (a swap right after it), the file goes where the handle points."""
    directory, token_directory = held
    target = tmp_path / "elsewhere"
    target.mkdir()
    directory.rename(tmp_path / "moved")
    directory.symlink_to(target)
    write_file_atomic("janedoe.2.token", b"t", mode=0o640, replace=False,
                      dir_fd=token_directory.fd)
    assert list(target.iterdir()) == []
    assert [p.name for p in (tmp_path / "moved").iterdir()] == ["janedoe.2.token"]
    token_directory.remove("/anything/janedoe.2.token")  # by name, through the handle
    assert list((tmp_path / "moved").iterdir()) == []


@pytest.mark.parametrize("change, reason", [
    (lambda d, t: (d.rename(t / "moved"), d.mkdir()), "replaced by another directory"),
    (lambda d, t: d.rename(t / "moved"), "is gone"),
    (lambda d, t: (d.rename(t / "moved"), d.write_text("")), "replaced by a file"),
    (lambda d, t: os.chmod(d, 0o757), "writable by everyone"),
    (lambda d, t: os.chmod(d, 0o770), "writable by its group"),
])
def test_every_kind_of_change_is_named(held, tmp_path, change, reason):
    directory, token_directory = held
    change(directory, tmp_path)
    assert reason in token_directory.problem()
    with pytest.raises(DirectoryChangedError, match=re.escape(reason)):
        token_directory.check()


def test_sticky_or_less_permissive_modes_are_no_change(held):
    directory, token_directory = held
    os.chmod(directory, 0o1777)
    assert token_directory.problem() is None
    os.chmod(directory, 0o700)
    assert token_directory.problem() is None


def test_a_directory_writable_at_start_stays_acceptable(tmp_path):
    directory = tmp_path / "shared"
    directory.mkdir()
    os.chmod(directory, 0o770)
    token_directory = TokenDirectory(str(directory))
    try:
        assert token_directory.problem() is None
    finally:
        token_directory.close()


def test_a_symlink_is_refused_when_opening(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(DirectoryChangedError, match="cannot be opened as a directory"):
        open_token_directory(str(tmp_path / "link"))


def test_issuer_refuses_to_write_into_a_changed_directory(held, tmp_path, rsa_private_key):
    directory, token_directory = held
    issuer = TokenIssuer(str(directory), Signer(rsa_private_key), ClaimRules(ttl=60),
                         token_directory=token_directory)
    assert Path(issuer.issue("janedoe", 1).path).exists()
    os.chmod(directory, 0o777)
    with pytest.raises(DirectoryChangedError):
        issuer.issue("janedoe", 2)
    assert [p.name for p in directory.iterdir()] == ["janedoe.1.token"]


def test_write_file_atomic_relative_to_a_directory_handle(tmp_path):
    descriptor = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        write_file_atomic("file", b"first", mode=0o640, replace=False, dir_fd=descriptor)
        with pytest.raises(FileExistsWriteError):
            write_file_atomic("file", b"second", replace=False, dir_fd=descriptor)
        write_file_atomic("file", b"third", mode=0o600, dir_fd=descriptor)
    finally:
        os.close(descriptor)
    assert (tmp_path / "file").read_bytes() == b"third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temp file left


def test_stale_files_and_deletions_go_through_the_handle(held, tmp_path):
    directory, token_directory = held
    (directory / "janedoe.5.token").write_text("t")
    (directory / ".janedoe.6.token.0123456789ab.tmp").write_text("t")
    (directory / "notes.txt").write_text("mine")
    removed = remove_stale_files(str(directory), True, dir_fd=token_directory.fd)
    assert sorted(removed) == sorted([str(directory / "janedoe.5.token"),
                                      str(directory / ".janedoe.6.token.0123456789ab.tmp")])
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]
    deleted = []
    pending = PendingDeletions(None, 0, lambda path, failure: deleted.append((path, failure)),
                               remove=token_directory.remove)
    (directory / "x.1.token").write_text("t")
    pending._delete(str(directory / "x.1.token"))
    assert deleted == [(str(directory / "x.1.token"), None)]
    assert not (directory / "x.1.token").exists()


# --- 8. bounded input files -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null", "/proc/self", "fifo", "socket"])
def test_anything_but_a_regular_file_is_refused_without_waiting(tmp_path, path):
    """A FIFO without a writer would block open() and read() for ever: refused at once."""
    if path == "fifo":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    elif path == "socket":
        path = str(tmp_path / "sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen()
    outcome = []

    def reader() -> None:
        try:
            read_bounded(path, "private key")
        except OkeraAuthError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "read_bounded waited on %s" % path
    assert outcome and re.search(r"private key file %s (is not a regular file|is a directory"
                                 r"|cannot be read)" % re.escape(path), outcome[0])


def test_a_reload_stuck_in_its_thread_never_holds_up_the_stop():
    """asyncio.run waits for its executor's threads; a reload blocked in a read (a hung file
    system) must not keep a stopped server alive."""
    release = threading.Event()

    async def stop_while_reloading() -> bool:
        reload = app.in_daemon_thread(release.wait)
        await asyncio.sleep(0)
        return reload.done()

    try:
        assert asyncio.run(stop_while_reloading()) is False  # returned with the reload stuck
        stuck = [thread for thread in threading.enumerate() if thread.name == "okera-authserver-reload"]
        assert stuck and all(thread.daemon for thread in stuck)
    finally:
        release.set()


def test_a_reload_thread_hands_back_its_result_and_its_error():
    async def both() -> tuple:
        value = await app.in_daemon_thread(lambda: 42)
        with pytest.raises(StartupError, match="broken"):
            await app.in_daemon_thread(_raise_startup_error)
        return value

    assert asyncio.run(both()) == 42


def _raise_startup_error() -> None:
    raise StartupError("broken")


def test_a_symlink_to_a_regular_file_is_read(tmp_path):
    target = tmp_path / "key"
    target.write_bytes(b"k")
    (tmp_path / "link").symlink_to(target)  # as a Kubernetes Secret volume lays out its keys
    assert read_bounded(str(tmp_path / "link"), "private key") == b"k"


def test_dev_zero_is_refused_without_reading_it():
    with pytest.raises(OkeraAuthError, match=r"private key file /dev/zero is not a regular file"):
        read_bounded("/dev/zero", "private key")


def test_a_file_over_the_bound_is_refused_and_one_at_the_bound_is_read(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (2 * 1024 * 1024))
    with pytest.raises(OkeraAuthError, match="groups file %s is larger than 1 MiB" % big):
        read_bounded(str(big), "groups")
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * (1024 * 1024))
    assert len(read_bounded(str(exact), "groups")) == 1024 * 1024


def test_a_pipe_is_refused_without_reading_it(tmp_path):
    """A pipe whose writer never closes: reading it to the end would wait forever."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"x" * 1002)
        with pytest.raises(OkeraAuthError, match="is not a regular file"):
            read_bounded("/proc/self/fd/%d" % read_end, "passphrase", limit=1000)
    finally:
        os.close(write_end)
        os.close(read_end)


def test_oversized_or_special_key_and_passphrase_stop_the_signer(tmp_path, rsa_key_pem):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    settings = parse_settings(["-k", str(big)])
    with pytest.raises(OkeraAuthError, match="private key file %s is larger" % big):
        load_signer(settings)
    settings = parse_settings(["-k", "/dev/zero"])
    with pytest.raises(OkeraAuthError, match="private key file /dev/zero is not a regular file"):
        load_signer(settings)
    key = tmp_path / "key.pem"
    key.write_bytes(rsa_key_pem)
    settings = parse_settings(["-k", str(key), "--private-key-passphrase-file", str(big)])
    with pytest.raises(OkeraAuthError, match="passphrase file %s is larger" % big):
        load_signer(settings)
    os.mkfifo(tmp_path / "fifo")
    settings = parse_settings(["-k", str(key), "--private-key-passphrase-file", str(tmp_path / "fifo")])
    with pytest.raises(OkeraAuthError, match="passphrase file %s is not a regular file" % (tmp_path / "fifo")):
        load_signer(settings)
    assert load_signer(parse_settings(["-k", str(key)])).kid


def test_groups_file_over_the_bound_or_nested_too_deep_is_refused(tmp_path):
    with pytest.raises(OkeraAuthError, match="groups file /dev/zero is not a regular file"):
        load_groups("/dev/zero")
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(StartupError, match="nested too deeply"):
        load_groups(str(nested))
    # The same bound as a token's claims: a groups file that deep could never be a claim.
    nested.write_text('{"a": %s}' % ("[" * 32 + "]" * 32))
    with pytest.raises(StartupError, match="groups file %s is nested too deeply: JSON of at most 32" % nested):
        load_groups(str(nested))


# --- 6. connections: budget, eviction, accept failures --------------------------------------

def _log() -> "tuple[EventLog, io.StringIO]":
    stream = io.StringIO()
    return EventLog("text", stream), stream


def test_budget_keeps_the_cap_when_the_limit_holds_it(monkeypatch):
    log, stream = _log()
    monkeypatch.setattr(app.resource, "getrlimit", lambda _which: (4096, 4096))
    assert connection_budget(512, 2, log) == 512 and stream.getvalue() == ""


def test_budget_raises_the_soft_limit_towards_the_hard_one(monkeypatch):
    log, stream = _log()
    calls = []
    monkeypatch.setattr(app.resource, "getrlimit", lambda _which: (256, 100000))
    monkeypatch.setattr(app.resource, "setrlimit", lambda which, limits: calls.append(limits))
    assert connection_budget(512, 2, log) == 512
    assert calls == [(512 + 34, 100000)] and stream.getvalue() == ""


def test_budget_lowers_the_cap_with_one_warning_when_the_hard_limit_is_low(monkeypatch):
    log, stream = _log()
    monkeypatch.setattr(app.resource, "getrlimit", lambda _which: (64, 64))
    monkeypatch.setattr(app.resource, "setrlimit", lambda which, limits: None)
    assert connection_budget(512, 2, log) == 30
    assert stream.getvalue().count("\n") == 1 and "at most 30 connections" in stream.getvalue()


def test_budget_survives_a_refused_setrlimit(monkeypatch):
    def refuse(_which, _limits):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    log, _stream = _log()
    monkeypatch.setattr(app.resource, "getrlimit", lambda _which: (1024, 1 << 20))
    monkeypatch.setattr(app.resource, "setrlimit", refuse)
    assert connection_budget(2000, 2, log) == 1024 - 34


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _server(max_connections: int) -> "tuple[HttpServer, io.StringIO]":
    log, stream = _log()
    server = HttpServer(None, None, log, Metrics(), None,
                        Limits(max_connections=max_connections), CallerPolicy())
    return server, stream


def _open(server: HttpServer, waiting: bool) -> _Connection:
    connection = _Connection(server)
    connection.transport = _Transport()
    server._connections.add(connection)
    if waiting:
        server._waiting[connection] = None
    return connection


def test_at_the_cap_the_longest_waiting_connection_makes_room():
    server, _stream = _server(3)
    first, busy, second = _open(server, True), _open(server, False), _open(server, True)
    assert server.make_room()
    assert first.evicted and first.transport.closed
    assert not busy.transport.closed and not second.transport.closed
    assert server.open_connections == 2 and server.metrics.connections_evicted == 1


def test_below_the_cap_nothing_is_closed():
    server, _stream = _server(3)
    connections = [_open(server, True) for _round in range(2)]
    assert server.make_room()
    assert not any(connection.transport.closed for connection in connections)


def test_when_every_connection_is_busy_the_new_one_is_refused():
    server, _stream = _server(2)
    busy = [_open(server, False) for _round in range(2)]
    assert not server.make_room()
    assert not any(connection.transport.closed for connection in busy)


def test_accept_failures_are_one_line_per_interval_and_free_idle_connections():
    server, stream = _server(100)
    idle = [_open(server, True) for _round in range(10)]
    error = OSError(errno.EMFILE, "Too many open files")
    for attempt in range(900):  # asyncio reports up to 1024 failed accepts per round
        server.accept_failed(error, 100.0 + attempt * 0.001)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "Too many open files (EMFILE)" in lines[0]
    assert "Traceback" not in stream.getvalue()
    assert sum(connection.evicted for connection in idle) == 5  # half, once a second
    server.accept_failed(error, 104.0)  # within 5 s of the line: still silent
    assert len(stream.getvalue().splitlines()) == 1
    server.accept_failed(error, 105.5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "901 failed attempts since the last such line" in lines[1]
    assert server.metrics.accept_failures == 902
    assert sum(connection.evicted for connection in idle) == 8  # and half of the rest later


def test_loop_exception_handler_takes_only_accept_resource_errors():
    server, stream = _server(10)
    passed_on = []

    class Loop:
        def time(self) -> float:
            return 1.0

        def default_exception_handler(self, context) -> None:
            passed_on.append(context)

    for number in (errno.EMFILE, errno.ENFILE):
        server.loop_exception(Loop(), {"message": "socket.accept() out of system resource",
                                       "exception": OSError(number, os.strerror(number))})
    assert passed_on == [] and stream.getvalue().count("\n") == 1
    other = {"message": "Task exception was never retrieved", "exception": ValueError("x")}
    server.loop_exception(Loop(), other)
    assert passed_on == [other]
