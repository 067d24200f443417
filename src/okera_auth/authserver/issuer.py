# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The auth server's token files: safe user names, minting, writing, and deleting them.

A token file is ``<directory>/<user>.<nanoseconds>.token``. The user name is
the only outside input in that path, so it is decoded once and checked against
a strict charset: no ``/``, no ``..``, no NUL, nothing that could leave the
directory. A token file is created at its final name with O_EXCL (never
replacing a file), with its mode and group before the first byte, and written
with one write(); its name is handed out only after that write, so the client
reads the whole token. A token larger than PAGE_BYTES goes through the
library's atomic writer instead (a temp file, then a hard link), because a
write() of more than one page could be seen half done by someone listing the
directory.

The directory is held open from the start (``TokenDirectory``): files are
created, linked and deleted through that handle, and before each write its path
is checked to still lead to the same directory with the same owner and no new
write permission; when it does not, nothing is written.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote_to_bytes

from okera_auth.module_utils.errors import FileExistsWriteError, FileWriteError, OkeraAuthError, shown
from okera_auth.module_utils.files import write_file_atomic
from okera_auth.module_utils.keys import public_jwk
from okera_auth.module_utils.tokens import Signer, TokenSpec, build_claims

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
# A token up to this size is written in place with one write(): Linux copies a write() within
# one page before it moves the file's size, so even a reader listing the directory sees the
# file empty or whole. A bigger token is written to a temp file and linked into place.
PAGE_BYTES = 4096
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                 | getattr(os, "O_CLOEXEC", 0))


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
        raise UserNameError("%s: it may hold only letters, digits and . _ @ - "
                            "(not first: . -), and no '..'" % _name_problem(name))
    if is_reserved_name(name):
        raise UserNameError("%s is the name of an endpoint (%s), never a user name"
                            % (shown(name), ", ".join("/" + reserved for reserved in RESERVED_NAMES)))
    return name


def _name_problem(name: str) -> str:
    """What makes ``name`` (not empty, not too long) no user name, first thing first."""
    for position, char in enumerate(name):
        if not USER_NAME.fullmatch("a" + char):
            return "%r is not allowed in a user name" % char
        if position == 0 and not USER_NAME.fullmatch(char):
            return "a user name may not start with %r" % char
    return "'..' is not allowed in a user name"


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


class _Umask:
    """The process's umask, read once (reading it means setting it) and again by refresh()."""

    def __init__(self) -> None:
        self.value = 0o777
        self.refresh()

    def refresh(self) -> None:
        self.value = os.umask(0o077)
        os.umask(self.value)


_UMASK = _Umask()


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
        # The group a new file gets by itself (the process's, or the directory's when it is
        # set-group-ID), learnt by probe(); None: unknown, so fchown every file.
        self.created_gid: Optional[int] = None

    def probe(self, gid: Optional[int]) -> None:
        """Create and remove one file to learn which group new files get without fchown, and
        prove that they can be given to ``gid``; raises PermissionError when they cannot."""
        name = ".okera-authserver-probe.%d" % os.getpid()
        descriptor = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=self.fd)
        try:
            self.created_gid = os.fstat(descriptor).st_gid
            if gid is not None and gid != self.created_gid:
                os.fchown(descriptor, -1, gid)
        finally:
            os.close(descriptor)
            os.unlink(name, dir_fd=self.fd)

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
        """Write a new file ``name`` (never replacing one); returns its path.

        Up to PAGE_BYTES: created at its name with O_EXCL and ``mode`` (fchmod only when the
        umask takes bits of it, fchown only when the file is not born in ``gid``), then one
        write(): three system calls in the common case. Bigger: a temp file linked into place.
        """
        self.check()
        if len(data) > PAGE_BYTES:
            write_file_atomic(name, data, mode=mode, gid=gid, durable=False, replace=False,
                              dir_fd=self.fd)
            return os.path.join(self.path, name)
        try:
            descriptor = os.open(name, _CREATE_FLAGS, mode, dir_fd=self.fd)
        except FileExistsError:
            raise FileExistsWriteError("%s already exists" % name) from None
        except OSError as error:
            raise FileWriteError("cannot create a file in %s: %s"
                                 % (self.path, error.strerror)) from None
        try:
            if mode & _UMASK.value:
                os.fchmod(descriptor, mode)  # exact mode, whatever the umask
            if gid is not None and gid != self.created_gid:
                os.fchown(descriptor, -1, gid)
            written = os.write(descriptor, data)
            if written != len(data):
                raise OSError(28, "short write (%d of %d bytes)" % (written, len(data)))
        except OSError as error:
            os.close(descriptor)
            try:
                os.unlink(name, dir_fd=self.fd)
            except OSError:
                pass
            raise FileWriteError("cannot write %s: %s"
                                 % (name, error.strerror or error)) from None
        os.close(descriptor)
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
        # The claims of every token but sub, iat, exp, jti and groups, serialised once: each
        # request then formats a few numbers into bytes instead of running the JSON encoder.
        # The result is held against tokens.build_claims by the unit tests.
        spec = rules.spec_for("check", None)
        build_claims(spec, int(time.time()))  # refuses now what every request would refuse
        static = spec.expected_claims()
        # build_claims' order: sub, iss, aud, groups, the extra claims, iat, exp, jti.
        self._claims_before_groups = _json_members(
            {name: static[name] for name in ("iss", "aud") if name in static})
        self._claims_after_groups = _json_members(rules.claims)
        self._ttl = int(rules.ttl)
        self._jti = rules.jti

    def replace_signer(self, signer: Signer) -> None:
        old = self.signer
        now = time.time()
        self.retired = [(kept, until) for kept, until in self.retired
                        if until > now and kept.kid != signer.kid]
        if old.kid != signer.kid:
            self.retired.append((old, now + self.rules.ttl))
        self.signer = signer

    def claims_json(self, user: str, now: int) -> bytes:
        """The claims of a token for ``user``, as tokens.build_claims makes them, serialised."""
        groups = self.groups.get(user)
        parts = ['{"sub":', json.dumps(user), self._claims_before_groups]
        if groups is not None:
            parts.append(',"groups":')
            parts.append(json.dumps(list(groups), separators=(",", ":")))
        parts.append(self._claims_after_groups)
        parts.append(',"iat":%d,"exp":%d' % (now, now + self._ttl))
        if self._jti:
            parts.append(',"jti":"%s"' % secrets.token_hex(16))
        parts.append("}")
        return "".join(parts).encode("utf-8")

    def mint(self, user: str, now: Optional[int] = None) -> Tuple[str, int]:
        """(token, expiry) for ``user``: the claims, signed with the current key."""
        now = int(time.time()) if now is None else now
        signer = self.signer
        signing_input = signer.header_segment + b"." + base64.urlsafe_b64encode(
            self.claims_json(user, now)).rstrip(b"=")
        signature = signer.signature(signing_input)
        token = signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")
        return token.decode("ascii"), now + self._ttl

    def issue(self, user: str, nanos: int) -> IssuedToken:
        """Mint a token for ``user`` and write it to a new file named with ``nanos``."""
        token, expires_at = self.mint(user)
        data = token.encode("ascii")
        for attempt in range(_NAME_ATTEMPTS):
            name = "%s.%d.token" % (user, nanos + attempt)
            try:
                path = self.token_directory.write(name, data, self.file_mode, self.gid)
            except FileExistsWriteError:
                continue
            except FileWriteError as error:
                raise FileWriteError("%s (in %s)" % (error, self.directory)) from None
            return IssuedToken(path=path, token=token, expires_at=expires_at)
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


def _json_members(claims: Mapping[str, Any]) -> str:
    """',"name":value,...' for the members of ``claims`` in their order (empty for none)."""
    if not claims:
        return ""
    return "," + json.dumps(dict(claims), separators=(",", ":"))[1:-1]


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
