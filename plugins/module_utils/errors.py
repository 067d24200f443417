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
# Key material or a token: PEM, a JWT (header.claims.signature), a long run of base64 (mixed
# case and digits, as encoded bytes are; a long name of letters alone is no secret).
_SECRET_SHAPE = re.compile(
    r"-----BEGIN|PRIVATE KEY"
    r"|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/=_-]{100,}")
# In a message, even a shorter run of base64 is withheld (a signature, a secret's piece).
_BASE64_RUN = re.compile(r"[A-Za-z0-9+=_-]{40}")


def looks_like_secret(text: str) -> bool:
    """Whether ``text`` looks like a key or a token (or is several lines, as PEM is): such a
    value is never put in a claim, a header or a message."""
    if len(text.splitlines()) > 1 or _SECRET_SHAPE.search(text):
        return True
    return any(re.search(r"[A-Z]", run) and re.search(r"[a-z]", run) and re.search(r"[0-9]", run)
               for run in _LONG_BASE64.findall(text))


def withheld(text: str) -> str:
    """What stands in a message for a value that is not shown."""
    return "(a value of %d characters, not shown)" % len(text)


def is_shown(text: str) -> bool:
    """Whether ``text`` may appear in a message: one short printable line that looks like no secret."""
    return (len(text) <= SHOWN_LIMIT and text.isprintable() and not looks_like_secret(text)
            and not _BASE64_RUN.search(text))


def shown(value: Any) -> str:
    """A user-given value as a message quotes it: its repr (``'24h'``, ``-1``), or withheld()."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except (ValueError, RecursionError):  # an int past 4300 digits, a structure nested past the stack
        return "(a %s too large to show)" % type(value).__name__
    return repr(value) if is_shown(text) else withheld(text)


# A path may be as long as the system allows; what withholds one is only the shape of a secret.
PATH_SHOWN_LIMIT = 4096


def shown_path(path: Any) -> str:
    """A user-given path as a message names it: as it is (long and with long words too, as
    test and Secret-volume paths are), unless it looks like a key or a token - then withheld()."""
    text = str(path)
    return text if len(text) <= PATH_SHOWN_LIMIT and text.isprintable() and not looks_like_secret(text) else withheld(text)


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


def whole_number(value: Any, option: str) -> int:
    """The value of an integer option, declared ``type: raw``: Ansible's own int check quotes
    a value it cannot convert whole, a key pasted there included; this one quotes it with shown()."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise OkeraAuthError("%s must be a whole number, not %s" % (option, shown(value))) from None
