# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The daemon's options, each declared once in OPTIONS.

From that one table come the argument parser, the ``OKERA_AUTHSERVER_*`` environment
fallback, the names of Okera's tutorial container (``PORT``, ``TOKEN_DIR``, ...), the
Settings object and the checks of the settings, and (in manual.py) the long help and the
manual page; the role's tests hold its variables and environment template against the
same table.

Where a value comes from, first found wins: a flag, its ``OKERA_AUTHSERVER_*`` variable,
Okera's tutorial variable (only with ``--tutorial-env``), the default. Empty variables count
as unset.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from okera_auth.module_utils.errors import OkeraAuthError, shown
from okera_auth.module_utils.tokens import MAX_JSON_DEPTH, json_nests_too_deep, parse_duration
from .events import LOG_FORMATS

ENV_PREFIX = "OKERA_AUTHSERVER_"


class StartupError(OkeraAuthError):
    """The server cannot start with the settings given."""


def usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


# --processes auto on a big node stops here: a token daemon with more than this many worker
# processes would hold memory (about 25 MiB each) for a rate no node needs.
AUTO_PROCESSES_MAX = 4
# What --processes and --workers may ask for at most: more processes or threads than CPUs only
# cost memory, and an unbounded number would fork or spawn until the node runs out.
PROCESSES_MAX = 64
WORKERS_MAX = 64
# The highest uid or gid: (uid_t)-1, one more, is what chown takes for "leave it unchanged".
ID_MAX = 4294967294
# Token files are for their owner and group to read: no bit for others, no write for the group.
FILE_MODE_FORBIDDEN_BITS = 0o027
# What a Unix socket's path may hold: sun_path is 108 bytes with the closing NUL.
UNIX_PATH_MAX = 107


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> Optional[int]:
    """The CPU quota of this process's cgroup, rounded up to whole CPUs (a container's
    ``resources.limits.cpu``), or None when there is none."""
    try:
        with open(os.path.join(root, "cpu.max")) as handle:  # cgroup v2
            quota, period = handle.read().split()[:2]
        if quota == "max":
            return None
        return max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us")) as handle:
            quota = int(handle.read())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us")) as handle:
            period = int(handle.read())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else max(1, -(-quota // period))


def auto_processes() -> int:
    """--processes auto: one worker process per CPU this process may use (its cpuset and its
    cgroup's CPU quota), at most AUTO_PROCESSES_MAX."""
    cpus = usable_cpus()
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, limit)
    return max(1, min(cpus, AUTO_PROCESSES_MAX))


def loopback_address(text: str) -> str:
    """``text`` if it is a loopback address; 'localhost' means 127.0.0.1."""
    if text.strip().lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        raise StartupError("bind address %s is not an IP address: use 127.0.0.1 or ::1"
                           % shown(text)) from None
    if not address.is_loopback:
        raise StartupError("bind address %s is not a loopback address: the server only "
                           "listens on 127.0.0.0/8 or ::1" % address)
    return str(address)


def _text(value: str, _what: str) -> str:
    return value


def _whole_number(value: str, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StartupError("%s %s is not a whole number" % (what, shown(value))) from None


def _port(value: str, what: str) -> int:
    port = _whole_number(value, what)
    if not 0 <= port <= 65535:
        raise StartupError("port %d is not between 0 and 65535" % port)
    return port


def _at_least_one(value: str, what: str) -> int:
    number = _whole_number(value, what)
    if number < 1:
        raise StartupError("%s must be at least 1" % what)
    return number


def _zero_or_more(value: str, what: str) -> int:
    number = _whole_number(value, what)
    if number < 0:
        raise StartupError("%s must be 0 or more" % what)
    return number


def _at_most(number: int, highest: int, what: str) -> int:
    if number > highest:
        raise StartupError("%s %d is more than %d: give at most one per CPU (this node has %d)"
                           % (what, number, highest, usable_cpus()))
    return number


def _processes(value: Any, what: str) -> int:
    if str(value).strip().lower() == "auto":
        return auto_processes()
    return _at_most(_at_least_one(value, what), PROCESSES_MAX, what)


def _workers(value: Any, what: str) -> int:
    return _at_most(_zero_or_more(value, what), WORKERS_MAX, what)


def _duration(value: str, _what: str) -> int:
    return parse_duration(value)


def _octal_mode(value: str, _what: str) -> int:
    digits = value.strip().lower()
    digits = digits[2:] if digits.startswith("0o") else digits
    if not digits or any(char not in "01234567" for char in digits) or int(digits, 8) > 0o777:
        raise StartupError("file mode %s is not an octal mode such as 0640" % shown(value))
    mode = int(digits, 8)
    if mode & FILE_MODE_FORBIDDEN_BITS:
        raise StartupError("file mode %04o lets %s token files: give a mode without bits for "
                           "others or group write, such as 0600, 0640, 0440 or 0400"
                           % (mode, "others at" if mode & 0o007 else "the group write"))
    return mode


def _log_format(value: str, _what: str) -> str:
    if value not in LOG_FORMATS:
        raise StartupError("log format %s is not %s" % (shown(value), " or ".join(LOG_FORMATS)))
    return value


def _bind(value: str, _what: str) -> str:
    return loopback_address(value)


def numeric_id(text: str, what: str) -> int:
    """A uid or gid written as digits, within 0..ID_MAX."""
    number = int(text)
    if number > ID_MAX:
        raise StartupError("%s %s is not a uid or gid: give a number from 0 to %d"
                           % (what, text, ID_MAX))
    return number


def _group(value: str, what: str) -> str:
    text = str(value).strip()
    if text.isdigit():
        numeric_id(text, what)
    return text


def _id_list(value: str, what: str) -> List[int]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not all(item.isdigit() for item in items):
        raise StartupError("%s %s must be comma-separated numbers, e.g. 1000,1001" % (what, shown(value)))
    return [numeric_id(item, what) for item in items]


def _comma_list(value: str, _what: str) -> List[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_json(text: str, what: str) -> Any:
    """The JSON of a flag, a variable or a file: ValueError when it is not JSON, a one-line
    StartupError when it nests deeper than tokens allow (before any parser recursion)."""
    if json_nests_too_deep(text):
        raise StartupError("%s is nested too deeply: JSON of at most %d levels is read"
                           % (what, MAX_JSON_DEPTH))
    try:
        return json.loads(text)
    except RecursionError:  # the depth check already stops this; a deep stack could not
        raise StartupError("%s is nested too deeply: JSON of at most %d levels is read"
                           % (what, MAX_JSON_DEPTH)) from None


def _claims_object(value: str, _what: str) -> Dict[str, Any]:
    try:
        document = parse_json(value, ENV_PREFIX + "CLAIMS")
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise StartupError("%sCLAIMS must be a JSON object, e.g. {\"tenant\": \"a\"}" % ENV_PREFIX)
    return document


def _claim_pairs(values: Sequence[str], _what: str) -> Dict[str, Any]:
    claims = {}
    for text in values:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise StartupError("claim %s is not KEY=VALUE" % shown(text))
        try:
            claims[name.strip()] = parse_json(value, "claim %s" % name.strip())
        except ValueError:
            claims[name.strip()] = value
    return claims


def _repeated(values: Sequence[str], _what: str) -> List[str]:
    return list(values)


def _true_or_false(value: str, what: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise StartupError("%s%s=%s is not true or false" % (ENV_PREFIX, what, shown(value)))


Converter = Callable[[Any, str], Any]
# Okera's tutorial image names its key by two variables: $SECRET_DIR/$PRIVATE_KEY_FILE.
TUTORIAL_KEY_FILE = "JWT_PRIVATE_KEY"


def _tutorial_key_path(environ: Mapping[str, str]) -> Optional[str]:
    """$SECRET_DIR/$PRIVATE_KEY_FILE, the file defaulting to JWT_PRIVATE_KEY (the key of the
    tutorial's Secret ``authentication``); PRIVATE_KEY_FILE alone is a path."""
    secret_dir = environ.get("SECRET_DIR", "")
    key_file = environ.get("PRIVATE_KEY_FILE", "")
    if secret_dir:
        return os.path.join(secret_dir, key_file or TUTORIAL_KEY_FILE)
    return key_file or None


@dataclass(frozen=True)
class Option:
    """One daemon option: its flags, its environment variable, its value and its help."""

    name: str  # attribute of Settings
    flags: Tuple[str, ...]  # the first long flag is the option's name on the command line
    help: str
    default: Any = None  # None: unset; a callable: computed when the settings are made
    convert: Converter = _text  # text of a flag or an environment variable -> value
    env: Optional[str] = None  # suffix after OKERA_AUTHSERVER_; default: the long flag's name
    switch: bool = False  # a flag that takes no value (store_true)
    repeatable: bool = False  # the flag may be given several times
    convert_flags: Optional[Converter] = None  # repeated flag values -> value
    metavar: Optional[str] = None
    # Names of Okera's tutorial container, read below OKERA_AUTHSERVER_* with --tutorial-env;
    # with several names, tutorial_value makes the value out of them.
    tutorial_env: Tuple[str, ...] = ()
    tutorial_value: Optional[Callable[[Mapping[str, str]], Optional[str]]] = None
    default_text: Optional[str] = None  # how help shows a default that is not a plain value

    @property
    def long_flag(self) -> str:
        return next(flag for flag in self.flags if flag.startswith("--"))

    @property
    def env_name(self) -> str:
        return self.env or self.long_flag[2:].upper().replace("-", "_")

    @property
    def value_name(self) -> str:
        """What the flag's value is called in help (PORT, KEY=VALUE)."""
        return self.metavar or self.long_flag[2:].upper().replace("-", "_")

    def tutorial_text(self, environ: Mapping[str, str]) -> Tuple[str, Optional[str]]:
        """(the variables' names, their value) from Okera's tutorial names in ``environ``."""
        if self.tutorial_value is not None:
            return "/".join(self.tutorial_env), self.tutorial_value(environ)
        for name in self.tutorial_env:
            if environ.get(name, "") != "":
                return name, environ[name]
        return "/".join(self.tutorial_env), None


OPTIONS: Tuple[Option, ...] = (
    Option("port", ("-p", "--port"), default=5001, convert=_port, tutorial_env=("PORT",),
           help="TCP port on the loopback address (default 5001; 0 picks a free port)"),
    Option("directory", ("-d", "--directory"), default="/tmp/tokens", tutorial_env=("TOKEN_DIR",),
           help="directory of the token files, created 0750 if missing (default /tmp/tokens)"),
    Option("private_key", ("-k", "--private-key"), default="", default_text="none (required)",
           tutorial_env=("SECRET_DIR", "PRIVATE_KEY_FILE"), tutorial_value=_tutorial_key_path,
           help="private key file: PEM (PKCS#1, PKCS#8, encrypted), OpenSSH, or base64 of PEM "
                "(required)"),
    Option("algorithm", ("-a", "--algorithm"), default="rsa512", tutorial_env=("ALGORITHM",),
           help="signing algorithm: rsa512 (default), rsa256, or a JWA name "
                "(RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)"),
    Option("disable_delete", ("--disable-delete",), default=False, switch=True,
           convert=_true_or_false,
           help="keep token files instead of deleting them after --delete-after"),
    Option("group", ("-g", "--group"), default="okera", convert=_group, tutorial_env=("GID",),
           help="group (name or numeric gid) that owns the token files (default okera)"),
    Option("private_key_passphrase_file", ("--private-key-passphrase-file",),
           help="file holding the passphrase of an encrypted private key"),
    Option("private_key_secret_id", ("--private-key-secret-id",),
           help="instead of --private-key: the AWS Secrets Manager secret (name or ARN) whose "
                "string is the private key, fetched at start and on SIGHUP (needs boto3: "
                "pip install okera-auth[aws]; credentials from boto3's chain)"),
    Option("aws_region", ("--aws-region",),
           help="AWS region of --private-key-secret-id (default: boto3's, e.g. AWS_REGION)"),
    Option("aws_endpoint_url", ("--aws-endpoint-url",),
           help="Secrets Manager endpoint URL for --private-key-secret-id instead of AWS's "
                "(a VPC endpoint or a local stand-in)"),
    Option("bind", ("--bind",), default="127.0.0.1", convert=_bind,
           help="loopback address to listen on: 127.0.0.0/8 or ::1 (default 127.0.0.1)"),
    Option("ttl", ("--ttl",), default="24h", convert=_duration,
           help="token lifetime: 24h (default), 30d, 90m, 45s or seconds"),
    Option("delete_after", ("--delete-after",), default="10s", convert=_duration,
           help="delete each token file this long after it is written (default 10s)"),
    Option("issuer", ("--issuer",), help="iss claim of every token"),
    Option("audience", ("--audience",), default=list, repeatable=True, convert=_comma_list,
           convert_flags=_repeated,
           help="aud claim; repeat for several audiences (environment: comma-separated)"),
    Option("claims", ("--claim",), env="CLAIMS", default=dict, repeatable=True,
           convert=_claims_object, convert_flags=_claim_pairs, metavar="KEY=VALUE",
           help="extra static claim (VALUE read as JSON when it parses); repeatable "
                "(environment: one JSON object)"),
    Option("groups_file", ("--groups-file",),
           help='JSON object mapping user names to group lists, e.g. {"janedoe": ["analysts"]}; '
                "reloaded on SIGHUP"),
    Option("unix_socket", ("--unix-socket",),
           help="also listen on this Unix socket (mode 0660, owned by --group)"),
    Option("allowed_uids", ("--allowed-uids",), default=list, convert=_id_list,
           help="comma-separated uids allowed on the Unix socket (checked by SO_PEERCRED)"),
    Option("allowed_gids", ("--allowed-gids",), default=list, convert=_id_list,
           help="comma-separated primary gids allowed on the Unix socket"),
    Option("no_tcp", ("--no-tcp",), default=False, switch=True, convert=_true_or_false,
           help="serve only on the Unix socket"),
    Option("allow_unchecked_tcp", ("--allow-unchecked-tcp",), default=False, switch=True,
           convert=_true_or_false,
           help="with --allowed-uids/--allowed-gids, serve on TCP too, accepting that TCP "
                "callers are not checked (without it, that combination is refused: use --no-tcp)"),
    Option("file_mode", ("--file-mode",), default="0640", convert=_octal_mode,
           help="mode of the token files, octal, without bits for others or group write: "
                "0640 (default), 0600, 0440 or 0400"),
    Option("log_format", ("--log-format",), default="text", convert=_log_format,
           help="one line per event as %s (default text); tokens are never logged"
                % " or ".join(LOG_FORMATS)),
    Option("processes", ("--processes",), default="1", convert=_processes, metavar="N|auto",
           help="worker processes serving on the same port (SO_REUSEPORT), each signing in "
                "its own thread: auto is one per CPU the server may use (its cpuset and "
                "cgroup CPU quota), at most %d; N at most %d (default 1)" % (AUTO_PROCESSES_MAX, PROCESSES_MAX)),
    Option("workers", ("--workers",), default=0, convert=_workers,
           help="signing threads per process, at most %d; 0 (default) signs in the process's own "
                "thread, which is faster: use --processes for more CPUs" % WORKERS_MAX),
    Option("no_jti", ("--no-jti",), default=False, switch=True, convert=_true_or_false,
           help="leave out the jti claim (a random token id, added by default)"),
    Option("header_timeout", ("--header-timeout",), default="10s", convert=_duration,
           help="a request head must arrive within this time, else the connection is closed "
                "(default 10s)"),
    Option("max_connections", ("--max-connections",), default=512, convert=_at_least_one,
           help="open client connections at most; more are answered 503 (default 512)"),
    Option("tutorial_env", ("--tutorial-env",), default=False, switch=True,
           convert=_true_or_false,
           help="also read the environment of Okera's tutorial container, below the "
                "OKERA_AUTHSERVER_* variables: PORT, TOKEN_DIR, ALGORITHM, GID, and the key "
                "$SECRET_DIR/$PRIVATE_KEY_FILE (PRIVATE_KEY_FILE defaults to %s); the image's "
                "Containerfile turns it on" % TUTORIAL_KEY_FILE),
)

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}

# The settings object has one field per option, in the table's order.
Settings = dataclasses.make_dataclass(
    "Settings", [(option.name, Any) for option in OPTIONS],
    namespace={"__doc__": "The daemon's settings, one field per entry of OPTIONS."})


PROGRAM = "okera-authserver"
DESCRIPTION = (
    "Mint per-user JWTs into group-readable token files on request: GET /<user> answers the "
    "path of a new token file. Every option can also be set by an environment variable "
    "%s<LONG_NAME> (e.g. %sPORT); options win over the environment, which wins over Okera's "
    "tutorial names (read only with --tutorial-env), which win over the defaults."
    % (ENV_PREFIX, ENV_PREFIX))


class _PrintAndExit(argparse.Action):
    """--help-long, --help-man, --version: print a text made from OPTIONS, exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0,
                         default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any,
                 option_string: Optional[str] = None) -> None:
        from . import manual  # it reads this module's table

        parser._print_message(manual.TEXTS[self.const](), sys.stdout)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=DESCRIPTION, add_help=False)
    # Okera's binary (kingpin) answers --help with a pointer to --help-long and --help-man.
    parser.add_argument("-h", "--help", action="help",
                        help="show this help and exit (also try --help-long and --help-man)")
    parser.add_argument("--help-long", action=_PrintAndExit, const="long",
                        help="show every option with its environment variables and default")
    parser.add_argument("--help-man", action=_PrintAndExit, const="man",
                        help="print the manual page (roff): okera-authserver --help-man | man -l -")
    parser.add_argument("--version", action=_PrintAndExit, const="version",
                        help="print '%s <version>' and exit" % PROGRAM)
    for option in OPTIONS:
        # Every flag defaults to None, so "not given" is told apart from any value.
        if option.switch:
            parser.add_argument(*option.flags, dest=option.name, action="store_true",
                                default=None, help=option.help)
        else:
            parser.add_argument(*option.flags, dest=option.name, default=None,
                                action="append" if option.repeatable else "store",
                                metavar=option.metavar, help=option.help)
    return parser


def _value(option: Option, given: Any, environ: Mapping[str, str], tutorial: bool) -> Any:
    """The option's value: from its flag, else its OKERA_AUTHSERVER_* variable, else (with
    --tutorial-env) Okera's tutorial variable, else its default."""
    if given is not None:
        if option.switch:
            return True
        convert = option.convert_flags if option.repeatable else option.convert
        return convert(given, option.long_flag[2:])
    text = environ.get(ENV_PREFIX + option.env_name)
    if text not in (None, ""):
        return option.convert(text, option.env_name if option.switch else option.long_flag[2:])
    if tutorial and option.tutorial_env:
        names, text = option.tutorial_text(environ)
        if text not in (None, ""):
            return option.convert(text, names)
    default = option.default() if callable(option.default) else option.default
    # Defaults are written as a user would write them (24h, 0640) and read the same way.
    return option.convert(default, option.long_flag[2:]) if isinstance(default, str) else default


def parse_settings(argv: Optional[Sequence[str]] = None,
                   environ: Optional[Mapping[str, str]] = None) -> Any:
    """Settings from flags, then OKERA_AUTHSERVER_* variables, then (with --tutorial-env)
    Okera's tutorial names, then defaults."""
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    tutorial = _value(OPTIONS_BY_NAME["tutorial_env"], args.tutorial_env, environ, False)
    settings = Settings(**{option.name: _value(option, getattr(args, option.name), environ,
                                               tutorial)
                           for option in OPTIONS})
    _check_settings(settings)
    return settings


def _check_settings(settings: Any) -> None:
    """What no single option can check alone."""
    if settings.private_key and settings.private_key_secret_id:
        raise StartupError("give either -k/--private-key or --private-key-secret-id, not both")
    if not settings.private_key and not settings.private_key_secret_id:
        raise StartupError("no private key given: use -k/--private-key PATH (or %sPRIVATE_KEY%s), "
                           "or --private-key-secret-id SECRET"
                           % (ENV_PREFIX, ", or SECRET_DIR with the key in $SECRET_DIR/%s"
                              % TUTORIAL_KEY_FILE if settings.tutorial_env else ""))
    checked = settings.allowed_uids or settings.allowed_gids
    if checked and not settings.unix_socket:
        raise StartupError("--allowed-uids/--allowed-gids apply to the Unix socket: "
                           "give --unix-socket PATH too")
    if settings.unix_socket and len(os.fsencode(settings.unix_socket)) > UNIX_PATH_MAX:
        raise StartupError("cannot listen on the Unix socket %s: the path is %d bytes long, "
                           "longer than the %d bytes a Unix socket path may have; choose a "
                           "shorter --unix-socket path" % (settings.unix_socket,
                                                           len(os.fsencode(settings.unix_socket)),
                                                           UNIX_PATH_MAX))
    if settings.no_tcp and not settings.unix_socket:
        raise StartupError("--no-tcp needs --unix-socket PATH, else nothing would be served")
    if checked and not settings.no_tcp and not settings.allow_unchecked_tcp:
        # Any local user can reach the TCP port: the allow-list would be a door beside a wall.
        raise StartupError("--allowed-uids/--allowed-gids check callers on the Unix socket only, "
                           "but TCP is on and lets any local user past them: add --no-tcp, or "
                           "--allow-unchecked-tcp to accept that TCP callers are not checked")
