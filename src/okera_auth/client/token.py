# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tokens from the local auth server, for programs: ``get_token()`` and ``token_func()``.

A client asks the server for a token (``GET /<user>``), reads the file the server
names, and remembers the token per user and server. It reuses that token while it has
more than ``min_valid`` left; when a new one cannot be had for a reason that may pass
(the server restarting or briefly unreachable, the file deleted before it was read), the
remembered token stands in as long as it has not expired. Callers for the same user who
arrive while a request is under way share its outcome instead of asking again.
"""

from __future__ import annotations

import errno
import getpass
import grp
import os
import re
import stat
import threading
from dataclasses import dataclass
from typing import Dict, Optional, Union

from okera_auth.module_utils.errors import TokenFormatError, shown, shown_path
from okera_auth.module_utils.tokens import decode_unverified, expiry_facts, parse_duration
from .cache import MAX_TOKEN_FILE_BYTES, TokenCache, has_more_than, read_unexpired_token
from .errors import ClientError, ClientSettingsError, ServerUnreachableError, TokenFileError
from .transport import (
    DEFAULT_TIMEOUT, ServerAddress, ask_for_token_file, checked_timeout, resolve_server,
)

DEFAULT_MIN_VALID = 5 * 60
_ZERO_DURATION = re.compile(r"0+[smhdw]?")


def parse_min_valid(value: Union[int, str]) -> int:
    """Seconds in a margin such as ``5m``; unlike a lifetime, a margin may be zero."""
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0
    if isinstance(value, str) and _ZERO_DURATION.fullmatch(value.strip().lower()):
        return 0
    return parse_duration(value)


def current_user() -> str:
    """The user a token is for by default: ``getpass.getuser()``, as okera-fs-aws does."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        raise ClientSettingsError("cannot tell who the current user is: give a user name, or "
                                  "set USER") from None
    return checked_user(user)


def checked_user(user: object) -> str:
    """A user name the client can ask for: text that can be sent (UTF-8, percent-encoded)."""
    if not isinstance(user, str) or not user:
        raise ClientSettingsError("user name %s is not a name: give the user as text" % shown(user))
    try:
        user.encode("utf-8")
    except UnicodeEncodeError:
        raise ClientSettingsError("user name %s is not valid text (check USER, LOGNAME or the "
                                  "argument's encoding)" % shown(user)) from None
    return user


def _current_user_or_none() -> Optional[str]:
    try:
        return current_user()
    except ClientSettingsError:
        return None


def _group_of(path: str) -> str:
    """The group that may read a token file, for messages (its directory's when hidden)."""
    for candidate in (path, os.path.dirname(path)):
        try:
            gid = os.stat(candidate).st_gid
        except OSError:
            continue
        try:
            return "'%s' (gid %d)" % (grp.getgrgid(gid).gr_name, gid)
        except KeyError:
            return "gid %d" % gid
    return "of the token files"


def read_token_file(path: str, user: str) -> str:
    """The token in the file the server named, checked to be a JWT for ``user`` that has not
    expired. Messages name the file (through shown_path: the name comes from the server),
    never what it holds."""
    name = shown_path(path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise TokenFileError(
            "token file %s does not exist: the auth server deletes it --delete-after (10s by "
            "default) after writing it, so read it sooner; the client must also see the "
            "server's token directory (not a private /tmp)" % name, gone=True) from None
    except PermissionError:
        raise TokenFileError("cannot read token file %s: permission denied; the client must be "
                             "a member of the token files' group %s" % (name, _group_of(path))
                             ) from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise TokenFileError("token file %s is a symbolic link: refused" % name) from None
        raise TokenFileError("cannot read token file %s: %s" % (name, error.strerror)) from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise TokenFileError("%s is not a regular file: refused as a token file" % name)
        data = os.read(descriptor, MAX_TOKEN_FILE_BYTES + 1)
    except OSError as error:
        raise TokenFileError("cannot read token file %s: %s" % (name, error.strerror)) from None
    finally:
        os.close(descriptor)
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise TokenFileError("%s is larger than %d bytes: it holds no token"
                             % (name, MAX_TOKEN_FILE_BYTES))
    try:
        claims = decode_unverified(data).claims
    except TokenFormatError as error:
        raise TokenFileError("%s does not hold a JWT: %s" % (name, error)) from None
    subject = claims.get("sub")
    if subject != user:
        raise TokenFileError("the token in %s is for %s, not %s" % (name, shown(subject), shown(user)))
    if expiry_facts(claims)["expired"]:
        raise TokenFileError("the token in %s has expired already: is the auth server's clock "
                             "right?" % name)
    return data.decode("ascii").strip()


class _Remembered:
    """What a client knows of one user's tokens; changed only under ``lock``."""

    __slots__ = ("lock", "token", "failure", "generation", "loaded")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: Optional[str] = None  # the last good token
        self.failure: Optional[ClientError] = None  # how the last request failed, if it did
        self.generation = 0  # requests finished so far
        self.loaded = False  # the disk cache was read


class TokenClient:
    """Asks one auth server for tokens and remembers the last good one per user.

    ``cache`` keeps tokens between processes (okera-token uses it). ``fallback_file``
    (Okera's ``~/.okera/token``) is read when the server cannot be reached and nothing
    remembered is left, for the current user only since it holds their token.
    """

    def __init__(self, server: ServerAddress, cache: Optional[TokenCache] = None,
                 fallback_file: Optional[str] = None) -> None:
        self.server = server
        self.cache = cache
        self.fallback_file = fallback_file
        self._remembered: Dict[str, _Remembered] = {}
        self._remembered_lock = threading.Lock()

    def get_token(self, user: Optional[str] = None, min_valid: Union[int, str] = DEFAULT_MIN_VALID,
                  timeout: float = DEFAULT_TIMEOUT) -> str:
        """A token for ``user`` (default: the current user); raises ClientError."""
        user = current_user() if user is None else checked_user(user)
        margin = parse_min_valid(min_valid)
        timeout = checked_timeout(timeout)
        memory = self._memory(user)
        arrived_at = memory.generation  # read before waiting: did a request end meanwhile?
        with memory.lock:
            if not memory.loaded:
                memory.loaded = True
                if self.cache is not None:
                    memory.token = self.cache.load(self.server.label, user)
            if memory.generation != arrived_at:
                # A request under way when this caller arrived has ended: share its outcome.
                if memory.failure is not None:
                    return self._stand_in(memory, user, memory.failure)
                if memory.token is not None:
                    return memory.token
            if memory.token is not None and has_more_than(memory.token, margin):
                return memory.token
            try:
                token = read_token_file(ask_for_token_file(self.server, user, timeout), user)
            except ClientError as error:
                memory.failure = error
                memory.generation += 1
                return self._stand_in(memory, user, error)
            memory.token, memory.failure = token, None
            memory.generation += 1
        if self.cache is not None:
            self.cache.store(self.server.label, user, token)
        return token

    def forget(self) -> None:
        """Drop every remembered token (the disk cache stays)."""
        with self._remembered_lock:
            self._remembered.clear()

    def _memory(self, user: str) -> _Remembered:
        with self._remembered_lock:
            memory = self._remembered.get(user)
            if memory is None:
                memory = self._remembered[user] = _Remembered()
            return memory

    def _stand_in(self, memory: _Remembered, user: str, error: ClientError) -> str:
        """What to answer when no new token could be had: an unexpired token, or ``error``."""
        if error.transient and memory.token is not None and has_more_than(memory.token, 0):
            return memory.token
        if isinstance(error, ServerUnreachableError) and self.fallback_file:
            if user == _current_user_or_none():
                token = read_unexpired_token(self.fallback_file)
                if token:
                    return token
                if os.path.exists(self.fallback_file):
                    raise ServerUnreachableError("%s (and %s holds no token that has not "
                                                 "expired)" % (error, shown_path(self.fallback_file)))
        raise error


# get_token() remembers tokens across calls, as a program calling it again and again
# (PyOkera, once per connection) needs: one client per server, shared by the process.
_shared_clients: Dict[ServerAddress, TokenClient] = {}
_shared_clients_lock = threading.Lock()


def shared_client(server: ServerAddress) -> TokenClient:
    with _shared_clients_lock:
        client = _shared_clients.get(server)
        if client is None:
            client = _shared_clients[server] = TokenClient(server)
        return client


def forget_tokens() -> None:
    """Drop the tokens ``get_token()`` remembers, e.g. after the cluster rejected one."""
    with _shared_clients_lock:
        clients = list(_shared_clients.values())
    for client in clients:
        client.forget()


def get_token(user: Optional[str] = None, url: Optional[str] = None,
              unix_socket: Optional[str] = None, *,
              min_valid: Union[int, str] = DEFAULT_MIN_VALID,
              timeout: float = DEFAULT_TIMEOUT) -> str:
    """A token for ``user`` (default: the current user) from the auth server.

    The server is ``url`` or ``unix_socket``, else ``OKERA_AUTHSERVER_UNIX_SOCKET`` or
    ``OKERA_AUTHSERVER_URL``, else http://127.0.0.1:5001. A remembered token is reused
    while it has more than ``min_valid`` (seconds or a text like ``5m``) left; a value
    at least the tokens' lifetime asks the server every time. Thread-safe; raises
    ClientError with a one-line message.
    """
    return shared_client(resolve_server(url, unix_socket)).get_token(user, min_valid, timeout)


@dataclass(frozen=True)
class TokenFunc:
    """A zero-argument callable returning a token: PyOkera's ``token_func``.

    A plain value (PyOkera refuses a token_func it cannot pickle, so no closure).
    """

    server: ServerAddress
    user: str
    min_valid: int = DEFAULT_MIN_VALID
    timeout: float = DEFAULT_TIMEOUT

    def __call__(self) -> str:
        return shared_client(self.server).get_token(self.user, self.min_valid, self.timeout)


def token_func(user: Optional[str] = None, url: Optional[str] = None,
               unix_socket: Optional[str] = None, *,
               min_valid: Union[int, str] = DEFAULT_MIN_VALID,
               timeout: float = DEFAULT_TIMEOUT) -> TokenFunc:
    """``get_token`` with these options as a zero-argument callable, e.g.
    ``ctx.enable_token_auth(token_func=token_func())``. The server and the user are
    settled now, so a pickled copy asks the same server for the same user."""
    return TokenFunc(resolve_server(url, unix_socket),
                     current_user() if user is None else checked_user(user),
                     parse_min_valid(min_valid), checked_timeout(timeout))
