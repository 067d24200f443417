# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""okera-token and the Python client: ask the local auth server for a token, read its file.

``get_token()`` returns a token for the current user; ``token_func()`` makes the
zero-argument (and picklable) callable PyOkera's ``enable_token_auth(token_func=...)`` takes.
"""

from .errors import (
    BadAnswerError, ClientError, ClientSettingsError, ServerAnswerError, ServerUnreachableError,
    TokenFileError,
)
from .token import TokenClient, TokenFunc, forget_tokens, get_token, token_func

__all__ = [
    "BadAnswerError", "ClientError", "ClientSettingsError", "ServerAnswerError",
    "ServerUnreachableError", "TokenClient", "TokenFileError", "TokenFunc", "forget_tokens",
    "get_token", "token_func",
]
