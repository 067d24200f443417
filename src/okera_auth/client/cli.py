# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""okera-token: print a token from the local auth server, or decode one.

``okera-token [USER]`` prints one line, the token, so the command can be Okera's
``OKERA_TOKEN_RETRIEVAL_SCRIPT``. ``okera-token decode [TOKEN|-]`` prints a token's
header, claims and expiry as JSON. Failures are one line on stderr: exit code 1 when no
token could be had or decoded, 2 for options that cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, List, Optional, Sequence, TextIO

from okera_auth.module_utils.errors import OkeraAuthError, TokenFormatError
from okera_auth.module_utils.tokens import decode_unverified, expiry_facts, parse_duration
from .cache import TokenCache, default_cache_directory, okera_home_token_path
from .errors import ClientSettingsError
from .token import DEFAULT_MIN_VALID, TokenClient, current_user, parse_min_valid
from .transport import (
    DEFAULT_TIMEOUT, DEFAULT_URL, UNIX_SOCKET_VARIABLE, URL_VARIABLE, checked_timeout, resolve_server,
)

PROGRAM = "okera-token"
EXIT_FAILED = 1
EXIT_USAGE = 2
# A token read from stdin is a line; more than this is not a token.
MAX_STDIN_CHARS = 1024 * 1024

_TOKEN_HELP = """\
Prints a token for USER (default: the current user, as getpass.getuser() says) on stdout,
one line: usable as Okera's OKERA_TOKEN_RETRIEVAL_SCRIPT (OKERA_TOKEN_RETRIEVAL_SCRIPT=%(prog)s).

The token comes from okera-authserver: GET /<user> answers the path of a token file, which
is read at once (the server deletes it about 10s later; the client must be in the token
files' group). Tokens are cached in $XDG_CACHE_HOME/okera-auth (or ~/.cache/okera-auth), one
0600 file per user and server, and reused while they have more than --min-valid left. The
cache judges a token by its exp claim only: it does not verify signatures (the client has no
public key). When the server cannot be reached, a cached token that has not expired yet is
used; failing that, for the current user, ~/.okera/token if it holds a token that has not
expired (as okera-fs-aws does).

Decode any JWT, without verifying it:  %(prog)s decode [TOKEN|-]
A user named "decode" is asked for with:  %(prog)s -- decode
"""

_DECODE_HELP = """\
Prints the header, the claims and the expiry (expires_at, expires_in, expired) of a JWT as
JSON, read from the argument or, for - or no argument, from stdin. The signature is not
verified. Base64 padding dropped by JWTs is handled (a plain base64 -d fails on it).
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, as every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write("%s: %s (see --help)\n" % (PROGRAM, message))
        sys.exit(EXIT_USAGE)


def _token_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROGRAM, description=_TOKEN_HELP,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("user", nargs="?", metavar="USER",
                        help="user name the token is for (default: the current user)")
    parser.add_argument("--url", help="auth server URL (default: $%s, else %s)"
                        % (URL_VARIABLE, DEFAULT_URL))
    parser.add_argument("--unix-socket", metavar="PATH",
                        help="ask on the server's Unix socket instead (default: $%s); wins "
                             "over $%s" % (UNIX_SOCKET_VARIABLE, URL_VARIABLE))
    parser.add_argument("--min-valid", default="%dm" % (DEFAULT_MIN_VALID // 60),
                        metavar="DURATION",
                        help="reuse a cached token while it has more than this left: "
                             "%(default)s (default), 1h, 90s, 0")
    parser.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the cache: always ask the server")
    parser.add_argument("--timeout", default="%ds" % DEFAULT_TIMEOUT, metavar="DURATION",
                        help="wait this long for the server's answer (default %(default)s)")
    return parser


def _decode_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROGRAM + " decode", description=_DECODE_HELP,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("token", nargs="?", default="-", metavar="TOKEN|-",
                        help="the token, or - to read it from stdin (the default)")
    return parser


def decode_report(token: str, now: Optional[float] = None) -> dict:
    """What ``okera-token decode`` prints: header, claims and expiry facts; never the token."""
    decoded = decode_unverified(token)
    report = {"header": decoded.header, "claims": decoded.claims}
    report.update(expiry_facts(decoded.claims, now))
    return report


def _fail(message: str) -> int:
    sys.stderr.write("%s: %s\n" % (PROGRAM, message))
    return EXIT_FAILED


def _read_token_argument(argument: str, stdin: TextIO) -> str:
    if argument != "-":
        return argument
    if stdin.isatty():
        raise TokenFormatError("give a token, or pipe one to %s decode -" % PROGRAM)
    return stdin.read(MAX_STDIN_CHARS)


def _decode(argv: Sequence[str]) -> int:
    options = _decode_parser().parse_args(argv)
    try:
        report = decode_report(_read_token_argument(options.token, sys.stdin))
    except TokenFormatError as error:
        return _fail("cannot decode the token: %s" % error)
    except (OSError, UnicodeDecodeError) as error:
        return _fail("cannot read the token from stdin: %s" % error)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


def _flag(name: str, parse: Callable[[str], Any], text: str) -> Any:
    """``parse(text)``; its one-line error names the flag the value came from."""
    try:
        return parse(text)
    except OkeraAuthError as error:
        raise ClientSettingsError("%s: %s" % (name, error)) from None


def _print_token(argv: Sequence[str]) -> int:
    options = _token_parser().parse_args(argv)
    try:
        min_valid = _flag("--min-valid", parse_min_valid, options.min_valid)
        timeout = _flag("--timeout", lambda text: checked_timeout(parse_duration(text)), options.timeout)
        server = resolve_server(options.url, options.unix_socket)
    except OkeraAuthError as error:
        sys.stderr.write("%s: %s\n" % (PROGRAM, error))
        return EXIT_USAGE
    try:
        user = options.user if options.user is not None else current_user()
        cache = None if options.no_cache else TokenCache(default_cache_directory())
        client = TokenClient(server, cache=cache, fallback_file=okera_home_token_path())
        token = client.get_token(user, min_valid, timeout)
    except OkeraAuthError as error:
        return _fail(str(error))
    sys.stdout.write(token + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments: List[str] = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments[:1] == ["decode"]:
            return _decode(arguments[1:])
        return _print_token(arguments)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - the edge: one line, never a traceback
        return _fail("unexpected %s; please report it" % type(error).__name__)
