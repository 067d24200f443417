# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the token client: one line each, saying what to do, never holding a token."""

from __future__ import annotations

from okera_auth.module_utils.errors import OkeraAuthError


class ClientError(OkeraAuthError):
    """Base of the client's errors.

    ``transient`` says whether the failure may pass by itself (the server restarting, a
    file deleted before it was read): then a remembered token that has not expired may
    stand in for a new one.
    """

    transient = False


class ClientSettingsError(ClientError):
    """The client was told where to ask in a way it cannot use (a bad URL, two places)."""


class ServerUnreachableError(ClientError):
    """No connection, or no answer, from the auth server."""

    transient = True


class ServerAnswerError(ClientError):
    """The auth server answered with an error status (400 and 403 refuse the request)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.transient = status >= 500  # overloaded, stopping, disk full: try again later


class BadAnswerError(ClientError):
    """The answer is not what an auth server says (not HTTP, not a file path)."""


class TokenFileError(ClientError):
    """The token file the server named cannot be read or does not hold the user's token."""

    def __init__(self, message: str, gone: bool = False) -> None:
        super().__init__(message)
        self.transient = gone  # deleted before it was read: the next one may be read in time
