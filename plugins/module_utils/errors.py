# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the okera.auth library.

Every message is one line that says what was wrong and what to do, and never
carries a token, a key or a passphrase: the edges (modules, the daemon, the
sandbox) show it to users as it is.
"""

from __future__ import annotations

import re
from typing import Any

# What a message may quote of a value a user gave: a short single line. Anything longer, on
# several lines, or shaped like key material or a token is named by its length only, so that
# a key or token given in the wrong option never reaches an error message (Ansible's no_log
# masking matches exact values, not a repr with its newlines escaped).
SHOWN_LIMIT = 80
# Paths are longer than most values (a temp directory, a test's own directory) and are
# needed to act on an error: they may be this long.
SHOWN_PATH_LIMIT = 160
_KEY_MATERIAL = re.compile(
    r"-----BEGIN"                                     # PEM
    r"|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"  # a JWT's header.claims.signature
    r"|[A-Za-z0-9+=_-]{40}"                           # long base64 (a key, a signature, a secret)
    r"|PRIVATE KEY")


def withheld(text: str) -> str:
    """What stands in a message for a value that is not shown."""
    return "(a value of %d characters, not shown)" % len(text)


def is_shown(text: str, limit: int = SHOWN_LIMIT) -> bool:
    """Whether ``text`` may appear in a message: one short line that looks like no secret."""
    return (len(text) <= limit and len(text.splitlines() or [""]) == 1 and text.isprintable()
            and not _KEY_MATERIAL.search(text))


def shown(value: Any) -> str:
    """A user-given value as a message quotes it: ``'value'``, or withheld(value)."""
    text = str(value)
    return repr(text) if is_shown(text) else withheld(text)


def shown_path(path: Any) -> str:
    """A user-given path as a message names it: as it is, or withheld(path)."""
    text = str(path)
    return text if is_shown(text, SHOWN_PATH_LIMIT) else withheld(text)


class OkeraAuthError(Exception):
    """Base of every error the library raises on purpose."""


class KeyLoadError(OkeraAuthError):
    """A key could not be read, parsed, decrypted, or is too weak."""


class AlgorithmError(OkeraAuthError):
    """An algorithm name is unknown, not allowed, or does not fit the key."""


class ClaimsError(OkeraAuthError):
    """The claims asked for are inconsistent (reserved override, bad duration, bad time)."""


class TokenFormatError(OkeraAuthError):
    """A token is not a well-formed compact JWS (three base64url parts of JSON)."""


class FileWriteError(OkeraAuthError):
    """A file could not be written atomically; nothing was left behind."""


class FileExistsWriteError(FileWriteError):
    """The target of a no-replace write already exists; nothing was written."""


class MetricsError(OkeraAuthError):
    """Metrics could not be written to their textfile or pushed to a Pushgateway."""


class InputFileError(OkeraAuthError):
    """A file named by a user is missing, not a regular file, unreadable or too large."""
