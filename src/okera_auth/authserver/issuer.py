# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The auth server's token files: safe user names, minting, writing, and deleting them.

A token file is ``<directory>/<user>.<nanoseconds>.token``. The user name is
the only outside input in that path, so it is decoded once and checked against
a strict charset: no ``/``, no ``..``, no NUL, nothing that could leave the
directory. Files are written through the library's atomic writer (final mode
and group before the first byte, then a hard link that never replaces an
existing file), so a reader sees the whole token or nothing.

The directory is held open from the start (``TokenDirectory``): files are
created, linked and deleted through that handle, and before each write its path
is checked to still lead to the same directory with the same owner and no new
write permission; when it does not, nothing is written.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote_to_bytes

from okera_auth.module_utils.errors import FileExistsWriteError, FileWriteError, OkeraAuthError
from okera_auth.module_utils.files import write_file_atomic
from okera_auth.module_utils.keys import public_jwk
from okera_auth.module_utils.tokens import Signer, TokenSpec, mint

MAX_USER_LENGTH = 128
# Names of the server's own endpoints (/healthz, /metrics, /.well-known/...): never a user
# name, whatever the case or spelling (percent-escapes are decoded before the comparison).
RESERVED_NAMES = ("healthz", "metrics", ".well-known")
# Letters, digits, '_', '@', and '.', '-' after the first character: covers Unix, Kerberos
# short and e-mail style names, and can never spell a path separator or a dot segment.
USER_NAME = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9._@-]{0,%d}" % (MAX_USER_LENGTH - 1))
TOKEN_FILE = re.compile(r"(?P<user>%s)\.(?P<nanos>[0-9]+)\.token" % USER_NAME.pattern)
# Temp files of write_file_atomic for a token file: .<name>.<12 hex>.tmp
TOKEN_TEMP_FILE = re.compile(r"\.%s\.[0-9a-f]{12}\.tmp" % TOKEN_FILE.pattern)
# Another process may have taken a name in the same nanosecond: try the next ones.
_NAME_ATTEMPTS = 64


class UserNameError(OkeraAuthError):
    """A requested user name cannot name a token file."""


class DirectoryChangedError(OkeraAuthError):
    """The token directory is not the one the server checked at start: nothing is written."""


def is_reserved_name(name: str) -> bool:
    """Whether ``name`` (decoded) names one of the server's endpoints, in any letter case."""
    return name.lower() in RESERVED_NAMES


def validate_user_name(name: str) -> str:
    """Return ``name`` if it can safely name a token file, else raise UserNameError."""
    if not name:
        raise UserNameError("the user name is empty: ask for /<user>")
    if len(name) > MAX_USER_LENGTH:
        raise UserNameError("the user name is longer than %d characters" % MAX_USER_LENGTH)
    if not USER_NAME.fullmatch(name) or ".." in name:
        raise UserNameError(
            "the user name may hold only letters, digits and . _ @ - (not first: . -), "
            "and no '..'")
    if is_reserved_name(name):
        raise UserNameError("%r is the name of an endpoint (%s), never a user name"
                            % (name, ", ".join("/" + reserved for reserved in RESERVED_NAMES)))
    return name


def decode_user_name(raw: str) -> str:
    """Percent-decode a URL path segment exactly once, then validate it as a user name."""
    if len(raw) > 3 * MAX_USER_LENGTH:
        raise UserNameError("the user name is longer than %d characters" % MAX_USER_LENGTH)
    try:
        name = unquote_to_bytes(raw).decode("ascii")
    except UnicodeDecodeError:
        raise UserNameError("the user name may hold only ASCII letters, digits and . _ @ -") from None
    return validate_user_name(name)


@dataclass(frozen=True)
class IssuedToken:
    path: str
    token: str
    expires_at: int


@dataclass(frozen=True)
class ClaimRules:
    """What every token says besides its subject; groups come per user from a file.

    ``jti`` (a random id) makes each token unique, even two for one user in one
    second, and lets an audit trail name a token without holding it.
    """

    ttl: int
    issuer: Optional[str] = None
    audience: Sequence[str] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)
    jti: bool = True

    def spec_for(self, user: str, groups: Optional[Sequence[str]]) -> TokenSpec:
        audience: Any = None
        if len(self.audience) == 1:
            audience = self.audience[0]
        elif self.audience:
            audience = list(self.audience)
        return TokenSpec(subject=user, issuer=self.issuer, audience=audience, groups=groups,
                         ttl=self.ttl, claims=self.claims, jti=self.jti)


class TokenDirectory:
    """The token directory, held open by an O_DIRECTORY|O_NOFOLLOW descriptor.

    Files are created, linked and unlinked relative to the descriptor, so they land in
    the directory that was checked, never in whatever its path leads to later. Before
    each write ``problem()`` checks that the path still leads to that directory (not a
    symlink, not a replacement), that its owner is the same and that it grants no
    write permission to group or others it did not grant at start (unless sticky).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: Optional[int] = None
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(path, flags)
        except OSError as error:
            raise DirectoryChangedError("token directory %s cannot be opened as a directory "
                                        "(a symlink or a file?): %s"
                                        % (path, error.strerror)) from None
        info = os.fstat(self.fd)
        if info.st_uid not in (os.geteuid(), 0):
            self.close()
            raise DirectoryChangedError(
                "token directory %s belongs to uid %d: it must belong to the server's user "
                "or root" % (path, info.st_uid))
        self.identity = (info.st_dev, info.st_ino)
        self.uid = info.st_uid
        self.mode = stat.S_IMODE(info.st_mode)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass

    def problem(self) -> Optional[str]:
        """None while the path still leads to the directory opened at start, else why not."""
        try:
            seen = os.lstat(self.path)
        except FileNotFoundError:
            return "token directory %s is gone" % self.path
        except OSError as error:
            return "token directory %s cannot be checked: %s" % (self.path, error.strerror)
        if stat.S_ISLNK(seen.st_mode):
            return "token directory %s was replaced by a symlink" % self.path
        if not stat.S_ISDIR(seen.st_mode):
            return "token directory %s was replaced by a file" % self.path
        if (seen.st_dev, seen.st_ino) != self.identity:
            return "token directory %s was replaced by another directory" % self.path
        if seen.st_uid != self.uid:
            return ("token directory %s now belongs to uid %d (uid %d at start)"
                    % (self.path, seen.st_uid, self.uid))
        mode = stat.S_IMODE(seen.st_mode)
        if mode & 0o022 & ~self.mode and not mode & stat.S_ISVTX:
            return ("token directory %s became writable by %s (mode %04o, %04o at start)"
                    % (self.path, "everyone" if mode & 0o002 else "its group", mode, self.mode))
        return None

    def check(self) -> None:
        """Raise DirectoryChangedError when ``problem()`` finds one."""
        found = self.problem()
        if found:
            raise DirectoryChangedError(found)

    def writable(self) -> bool:
        return self.fd is not None and os.access(".", os.W_OK | os.X_OK, dir_fd=self.fd)

    def write(self, name: str, data: bytes, mode: int, gid: Optional[int]) -> str:
        """Write a new file ``name`` (never replacing one); returns its path."""
        self.check()
        write_file_atomic(name, data, mode=mode, gid=gid, durable=False, replace=False,
                          dir_fd=self.fd)
        return os.path.join(self.path, name)

    def remove(self, path: str) -> None:
        """Delete a file of this directory (given by name or by its path) through the handle."""
        os.unlink(os.path.basename(path), dir_fd=self.fd)


class TokenIssuer:
    """Mints a user's token and writes its file; safe to call from several threads.

    ``signer`` and ``groups`` are replaced whole on reload (one attribute store
    each), so a request uses the old or the new one, never a mix.
    """

    def __init__(self, directory: str, signer: Signer, rules: ClaimRules,
                 groups: Optional[Mapping[str, Sequence[str]]] = None,
                 file_mode: int = 0o640, gid: Optional[int] = None,
                 token_directory: Optional[TokenDirectory] = None) -> None:
        self.directory = directory
        self.token_directory = token_directory or TokenDirectory(directory)
        self.signer = signer
        self.rules = rules
        self.groups: Mapping[str, Sequence[str]] = groups or {}
        self.file_mode = file_mode
        self.gid = gid
        # Public keys replaced by a reload stay published until their last token expires.
        self.retired: List[Tuple[Signer, float]] = []
        rules.spec_for("check", None).validate()

    def replace_signer(self, signer: Signer) -> None:
        old = self.signer
        now = time.time()
        self.retired = [(kept, until) for kept, until in self.retired
                        if until > now and kept.kid != signer.kid]
        if old.kid != signer.kid:
            self.retired.append((old, now + self.rules.ttl))
        self.signer = signer

    def issue(self, user: str, nanos: int) -> IssuedToken:
        """Mint a token for ``user`` and write it to a new file named with ``nanos``."""
        signer = self.signer
        minted = mint(signer, self.rules.spec_for(user, self.groups.get(user)))
        data = minted.token.encode("ascii")
        for attempt in range(_NAME_ATTEMPTS):
            name = "%s.%d.token" % (user, nanos + attempt)
            try:
                path = self.token_directory.write(name, data, self.file_mode, self.gid)
            except FileExistsWriteError:
                continue
            except FileWriteError as error:
                raise FileWriteError("%s (in %s)" % (error, self.directory)) from None
            return IssuedToken(path=path, token=minted.token, expires_at=minted.expires_at)
        raise FileExistsWriteError("no free token file name for %s after %d attempts"
                                   % (user, _NAME_ATTEMPTS))

    def jwks(self) -> dict:
        now = time.time()
        signers = [self.signer] + [kept for kept, until in self.retired if until > now]
        keys = []
        for signer in signers:
            jwk = dict(public_jwk(signer.public_key))
            jwk.update({"kid": signer.kid, "alg": signer.algorithm, "use": "sig"})
            keys.append(jwk)
        return {"keys": keys}


class NameClock:
    """Nanosecond stamps for file names that never repeat within this process."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(time.time_ns(), self._last + 1)
        return self._last


def remove_stale_files(directory: str, tokens_too: bool,
                       dir_fd: Optional[int] = None) -> List[str]:
    """Delete temp files (and, if ``tokens_too``, token files) a crashed server left behind.

    With ``dir_fd`` (the open directory) the listing and the deletions go through it."""
    removed = []
    for entry in os.scandir(directory if dir_fd is None else dir_fd):
        stale = TOKEN_TEMP_FILE.fullmatch(entry.name) or (
            tokens_too and TOKEN_FILE.fullmatch(entry.name))
        if stale and entry.is_file(follow_symlinks=False):
            try:
                if dir_fd is None:
                    os.unlink(entry.path)
                else:
                    os.unlink(entry.name, dir_fd=dir_fd)
            except FileNotFoundError:
                continue
            removed.append(os.path.join(directory, entry.name))
    return removed


class PendingDeletions:
    """Token files owed a deletion.

    Every file waits the same delay, so they fall due in the order they were
    written: a queue and one timer serve them all (a timer per file would cost
    memory and heap work in proportion to the files pending). Files are deleted
    in batches at most ``BATCH_SECONDS`` late.
    """

    BATCH_SECONDS = 0.05

    def __init__(self, loop: Any, delay: float,
                 on_deleted: Callable[[str, Optional[str]], None],
                 remove: Callable[[str], None] = os.unlink) -> None:
        self.loop = loop
        self.delay = delay
        self.on_deleted = on_deleted
        self.remove = remove  # the server passes TokenDirectory.remove (through its handle)
        self._queue: Deque[Tuple[float, str]] = deque()
        self._timer: Any = None

    def __len__(self) -> int:
        return len(self._queue)

    def schedule(self, path: str) -> None:
        self._queue.append((self.loop.time() + self.delay, path))
        if self._timer is None:
            self._arm()

    def _arm(self) -> None:
        self._timer = self.loop.call_at(self._queue[0][0] + self.BATCH_SECONDS, self._delete_due)

    def _delete_due(self) -> None:
        now = self.loop.time()
        while self._queue and self._queue[0][0] <= now:
            self._delete(self._queue.popleft()[1])
        self._timer = None
        if self._queue:
            self._arm()

    def _delete(self, path: str) -> None:
        failure = None
        try:
            self.remove(path)
        except FileNotFoundError:
            pass  # a client removed it first: nothing is owed any more
        except OSError as error:
            failure = error.strerror
        self.on_deleted(path, failure)

    def delete_all_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            self._delete(self._queue.popleft()[1])
