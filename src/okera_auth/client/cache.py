# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tokens kept on disk between runs: okera-token's cache, and Okera's ``~/.okera/token``.

The client holds no public key, so it judges a kept token only by its ``exp`` claim
(read with ``decode_unverified``, never verified): good enough to decide whether asking
again is worth it, not to trust the token. A token without ``exp`` is never reused.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Mapping, Optional
from urllib.parse import quote

from okera_auth.module_utils.errors import FileWriteError, TokenFormatError
from okera_auth.module_utils.files import write_file_atomic
from okera_auth.module_utils.tokens import decode_unverified, expiry_facts

CACHE_DIRECTORY_NAME = "okera-auth"
# A JWT of Okera's is well under 4 KiB; a file much larger than that holds no token.
MAX_TOKEN_FILE_BYTES = 64 * 1024


def seconds_left(token: str, now: Optional[float] = None) -> Optional[int]:
    """Seconds until the token's ``exp``; None when it is malformed or has no ``exp``."""
    try:
        claims = decode_unverified(token).claims
    except TokenFormatError:
        return None
    return expiry_facts(claims, now)["expires_in"]


def has_more_than(token: str, seconds: int, now: Optional[float] = None) -> bool:
    """Whether the token lives longer than ``seconds`` from now (0: it has not expired)."""
    left = seconds_left(token, now)
    return left is not None and left > seconds


def token_subject(token: str) -> Optional[str]:
    try:
        subject = decode_unverified(token).claims.get("sub")
    except TokenFormatError:
        return None
    return subject if isinstance(subject, str) else None


def read_own_small_file(path: str, dir_fd: Optional[int] = None) -> Optional[str]:
    """The text of a regular file of ours (not a link, not someone else's), or None; with
    ``dir_fd``, ``path`` is a name in that open directory."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(descriptor)
        # Someone else's file in our cache would be a token they chose for us.
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return None
        data = os.read(descriptor, MAX_TOKEN_FILE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    if len(data) > MAX_TOKEN_FILE_BYTES:
        return None
    return data.decode("ascii", "replace").strip()


def default_cache_directory(environ: Optional[Mapping[str, str]] = None) -> str:
    """``$XDG_CACHE_HOME/okera-auth``, or ``~/.cache/okera-auth`` (the XDG rule: a relative
    ``XDG_CACHE_HOME`` is ignored)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, CACHE_DIRECTORY_NAME)


def okera_home_token_path() -> str:
    """Okera's per-user token file, which okera-fs-aws also reads."""
    return os.path.join(os.path.expanduser("~"), ".okera", "token")


def read_unexpired_token(path: str, now: Optional[float] = None,
                         dir_fd: Optional[int] = None) -> Optional[str]:
    """The token in ``path`` if it has not expired, else None (missing, malformed, expired)."""
    token = read_own_small_file(path, dir_fd)
    return token if token and has_more_than(token, 0, now) else None


class TokenCache:
    """One 0600 file per user and server in a 0700 directory, written atomically.

    The server is part of the file name so that a token from one server is never handed
    out for another; the user name is percent-encoded so it cannot leave the directory.
    The directory is used only while it is ours and no one else may write in it (as ssh
    treats ~/.ssh): there, another user could remove or swap the files. Each read and
    write goes through the directory opened and checked, not its path again.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def file_name_for(self, server_label: str, user: str) -> str:
        server_id = hashlib.sha256(server_label.encode("utf-8")).hexdigest()[:12]
        return "%s.%s.token" % (quote(user, safe="@-_."), server_id)

    def path_for(self, server_label: str, user: str) -> str:
        return os.path.join(self.directory, self.file_name_for(server_label, user))

    def load(self, server_label: str, user: str, now: Optional[float] = None) -> Optional[str]:
        """The kept token for ``user`` if it is still theirs and has not expired."""
        directory = self._open_private_directory()
        if directory is None:
            return None
        try:
            token = read_unexpired_token(self.file_name_for(server_label, user), now, directory)
        finally:
            os.close(directory)
        return token if token and token_subject(token) == user else None

    def store(self, server_label: str, user: str, token: str) -> bool:
        """Keep ``token``; False when the cache cannot be written (it is only a shortcut)."""
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError:
            return False
        directory = self._open_private_directory()
        if directory is None:
            return False
        try:
            # A lost cache file costs one request: no fsync.
            write_file_atomic(self.file_name_for(server_label, user), (token + "\n").encode("ascii"),
                              mode=0o600, durable=False, dir_fd=directory)
        except (FileWriteError, UnicodeEncodeError):
            return False
        finally:
            os.close(directory)
        return True

    def _open_private_directory(self) -> Optional[int]:
        """A descriptor of the cache directory if it is ours and only we may write in it."""
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            descriptor = os.open(self.directory, flags)
        except OSError:
            return None
        try:
            info = os.fstat(descriptor)
        except OSError:
            info = None
        if info is None or info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            os.close(descriptor)
            return None
        return descriptor
