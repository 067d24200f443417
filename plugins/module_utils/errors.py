# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the okera.auth library.

Every message is one line that says what was wrong and what to do, and never
carries a token, a key or a passphrase: the edges (modules, the daemon, the
sandbox) show it to users as it is.
"""

from __future__ import annotations


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
