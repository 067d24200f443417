# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files named by users: bounded reads of small inputs, and atomic writes (a reader sees the
old file or the whole new one, never a part)."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from typing import Mapping, Optional

from .errors import FileExistsWriteError, FileWriteError, InputFileError, shown_path

# Keys, passphrases, tokens and groups files are small: a key is a few KiB, a token with many
# groups some KiB, a groups file of thousands of users a few hundred. Anything bigger is a
# mistake, refused after reading at most this many bytes plus one.
MAX_INPUT_FILE_BYTES = 1024 * 1024


def read_bounded(path: str, what: str, limit: int = MAX_INPUT_FILE_BYTES) -> bytes:
    """The content of a small input file: a regular file of at most ``limit`` bytes.

    Opened with O_NONBLOCK, so a FIFO or a device never blocks, and refused unless it is a
    regular file (after symlinks); at most ``limit`` + 1 bytes are read, so a file that grows
    while it is read is refused too. Each failure is one line naming the file, never its content.
    """
    name = "%s file %s" % (what, shown_path(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise InputFileError("%s does not exist" % name) from None
    except PermissionError:
        raise InputFileError("%s cannot be read: permission denied" % name) from None
    except OSError as error:
        if error.errno == errno.ENXIO:  # a socket, or a device without its driver
            raise InputFileError("%s is not a regular file: give the %s file itself" % (name, what)) from None
        raise InputFileError("%s cannot be read: %s" % (name, error.strerror)) from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise InputFileError("%s is a directory, not a file" % name)
        if not stat.S_ISREG(mode):
            raise InputFileError("%s is not a regular file: give the %s file itself" % (name, what))
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as error:
        raise InputFileError("%s cannot be read: %s" % (name, error.strerror)) from None
    finally:
        os.close(descriptor)
    if left <= 0:
        raise InputFileError("%s is larger than %s, the most read: give the %s file itself"
                             % (name, _size(limit), what))
    return b"".join(chunks)


def same_file(path: str, other: str) -> bool:
    """Whether ``path`` and ``other`` lead to one file (device and inode, after symlinks and
    hard links); False when either does not exist."""
    try:
        first, second = os.stat(path), os.stat(other)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def refuse_replacing_inputs(path: str, inputs: Mapping[str, Optional[str]]) -> None:
    """Raise FileWriteError when the output ``path`` is one of the files a module reads (option
    name -> path): writing there would destroy the input, a signing key for example."""
    for option, other in inputs.items():
        if other and same_file(path, other):
            raise FileWriteError("path %s is the same file as %s: give another path; an input is never "
                                 "replaced, not even with force" % (shown_path(path), option))


def _size(count: int) -> str:
    if count % (1024 * 1024) == 0:
        return "%d MiB" % (count // (1024 * 1024))
    if count % 1024 == 0:
        return "%d KiB" % (count // 1024)
    return "%d bytes" % count


def write_file_atomic(path: str, data: bytes, mode: int = 0o600, gid: Optional[int] = None,
                      durable: bool = True, replace: bool = True,
                      dir_fd: Optional[int] = None) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, then rename.

    The temp file is created with O_EXCL|O_NOFOLLOW and gets its final mode (and
    group) before the first byte is written, so it is never readable by anyone
    it should not be. ``durable`` fsyncs before the rename; short-lived files
    (the auth server's) skip it. ``replace=False`` never overwrites: the temp file
    is hard-linked to ``path`` (which fails if it exists, raising
    FileExistsWriteError) instead of renamed. On any failure, an interruption too, the temp
    file is removed.

    With ``dir_fd`` (a descriptor of an open directory), ``path`` is relative to that
    directory and every step (create, link or rename, unlink) goes through the
    descriptor: the file lands in the directory that was opened, even if its path
    now leads somewhere else (a swapped directory or a symlink put in its place).
    """
    if dir_fd is None:
        directory, name = os.path.split(os.path.abspath(path))
    else:
        directory, name = os.path.split(path)
    temp_path = os.path.join(directory, ".%s.%s.tmp" % (name, secrets.token_hex(6)))
    where = shown_path(directory) if directory else "the directory"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(temp_path, flags, 0o600, dir_fd=dir_fd)
    except OSError as error:
        raise FileWriteError("cannot create a file in %s: %s" % (where, error.strerror)) from None
    try:
        try:
            os.fchmod(descriptor, mode)  # exact mode, whatever the umask
            if gid is not None:
                os.fchown(descriptor, -1, gid)
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view):]
            if durable:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if replace:
            os.rename(temp_path, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            os.link(temp_path, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.unlink(temp_path, dir_fd=dir_fd)
    except FileExistsError:
        _remove_quietly(temp_path, dir_fd)
        raise FileExistsWriteError("%s already exists" % shown_path(path)) from None
    except OSError as error:
        _remove_quietly(temp_path, dir_fd)
        raise FileWriteError("cannot write %s: %s" % (shown_path(path), error.strerror)) from None
    except BaseException:  # interrupted (Ctrl-C in okera-token): no temp file is left behind
        _remove_quietly(temp_path, dir_fd)
        raise


def _remove_quietly(path: str, dir_fd: Optional[int] = None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        pass
