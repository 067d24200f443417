# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What OPTIONS tells people: ``--help-long``, ``--help-man`` (a roff manual page) and
``--version``. Every line about an option is made from its entry in OPTIONS."""

from __future__ import annotations

import re
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List

from .options import DESCRIPTION, ENV_PREFIX, OPTIONS, PROGRAM, Option

DISTRIBUTION = "okera-auth"
SUMMARY = "mint per-user JWTs into group-readable token files (a drop-in for Okera's authserver)"
PRECEDENCE = ("Variables set to an empty value count as unset. With --tutorial-env (or %sTUTORIAL_ENV"
              "=true, as the auth server's image sets), the names of Okera's tutorial container "
              "are read too, below the %s* variables: %s." % (ENV_PREFIX, ENV_PREFIX, ", ".join(
                  "/".join(option.tutorial_env) for option in OPTIONS if option.tutorial_env)))
HTTP = [
    ("GET /<user>", "200, the path of a new token file (text/plain); with Accept: "
                    "application/json or ?format=json, {\"path\", \"token\", \"expires_at\"}"),
    ("GET /healthz", "200 when the token directory is usable, else 503 with a reason"),
    ("GET /metrics", "Prometheus metrics"),
    ("GET /.well-known/jwks.json", "the public key(s) as a JWK set"),
]
SIGNALS = [
    ("SIGHUP", "load the key and the groups file again; the old key stays if the new one fails"),
    ("SIGTERM, SIGINT", "finish the requests in flight, delete the files still owed a deletion, "
                        "exit 0"),
]


def package_version() -> str:
    """The installed distribution's version, else the collection's galaxy.yml version (a
    source tree that was not installed), else 'unknown'."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    for folder in Path(__file__).resolve().parents:
        galaxy = folder / "galaxy.yml"
        try:
            text = galaxy.read_text(encoding="utf-8")
        except OSError:
            continue
        if re.search(r"^namespace:\s*okera\s*$", text, re.M) and re.search(
                r"^name:\s*auth\s*$", text, re.M):
            found = re.search(r"""^version:\s*["']?([^"'\s#]+)""", text, re.M)
            if found:
                return found.group(1)
    return "unknown"


def version_text() -> str:
    return "%s %s\n" % (PROGRAM, package_version())


def flag_summary(option: Option) -> str:
    """``-p, --port PORT`` (switches take no value)."""
    flags = ", ".join(option.flags)
    return flags if option.switch else "%s %s" % (flags, option.value_name)


def default_summary(option: Option) -> str:
    if option.default_text:
        return option.default_text
    if option.switch:
        return "off"
    if option.default in (None, "") or callable(option.default):
        return "none"
    return str(option.default)


def environment_summary(option: Option) -> str:
    text = ENV_PREFIX + option.env_name
    if option.switch:
        text += " (true/false)"
    if option.tutorial_env:
        text += "; with --tutorial-env also %s" % " and ".join(
            "$" + name for name in option.tutorial_env)
    return text


def long_help() -> str:
    """Every option with its flags, help, default and environment variables."""
    wrap = textwrap.TextWrapper(width=100, initial_indent=" " * 8, subsequent_indent=" " * 8)
    lines = ["usage: %s [<flags>]" % PROGRAM, ""]
    lines += textwrap.wrap(DESCRIPTION, 100) + [""] + textwrap.wrap(PRECEDENCE, 100)
    lines += ["", "Flags:",
              "  -h, --help", wrap.fill("show the short help (also try --help-long and --help-man)"),
              "  --help-long", wrap.fill("show this help"),
              "  --help-man", wrap.fill("print the manual page (roff)"),
              "  --version", wrap.fill("print '%s <version>'" % PROGRAM)]
    for option in OPTIONS:
        lines.append("  " + flag_summary(option))
        lines.append(wrap.fill(option.help))
        lines.append(wrap.fill("default: %s; environment: %s"
                               % (default_summary(option), environment_summary(option))))
    return "\n".join(lines) + "\n"


def _roff(text: str) -> str:
    """Text made safe for roff: backslashes and hyphens escaped, no control line by accident."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _bold_flags(option: Option) -> str:
    flags = "\\fR, \\fB".join(_roff(flag) for flag in option.flags)
    value = "" if option.switch else " \\fI%s\\fR" % _roff(option.value_name)
    return "\\fB%s\\fR%s" % (flags, value)


def man_page() -> str:
    """The manual page okera-authserver(1) in roff (man -l - shows it)."""
    out: List[str] = [
        '.TH OKERA\\-AUTHSERVER 1 "" "%s %s" "User Commands"' % (
            _roff(PROGRAM), _roff(package_version())), ".nh", ".ad l",
        ".SH NAME", "%s \\- %s" % (_roff(PROGRAM), _roff(SUMMARY)),
        ".SH SYNOPSIS", ".B %s" % _roff(PROGRAM), "[\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION", _roff(DESCRIPTION),
        ".PP", _roff("A drop-in for Okera's binary: the same flags, defaults and answers, and its "
                     "log lines (Go's log format on stderr: 'YYYY/MM/DD HH:MM:SS message', e.g. "
                     "'Generated token: /tmp/tokens/janedoe.<nanoseconds>.token')."),
        ".SH OPTIONS",
        ".TP", "\\fB\\-h\\fR, \\fB\\-\\-help\\fR",
        _roff("Show the short help (also try --help-long and --help-man)."),
        ".TP", "\\fB\\-\\-help\\-long\\fR", _roff("Show every option with its environment "
                                                  "variables and default."),
        ".TP", "\\fB\\-\\-help\\-man\\fR", _roff("Print this manual page."),
        ".TP", "\\fB\\-\\-version\\fR", _roff("Print '%s <version>'." % PROGRAM),
    ]
    for option in OPTIONS:
        out += [".TP", _bold_flags(option), _roff(option.help[:1].upper() + option.help[1:] + "."),
                ".br", _roff("Default: %s. Environment: %s." % (default_summary(option),
                                                                environment_summary(option)))]
    out += [".SH ENVIRONMENT", _roff(PRECEDENCE)]
    for option in OPTIONS:
        out += [".TP", "\\fB%s\\fR" % _roff(ENV_PREFIX + option.env_name),
                _roff("As %s." % option.long_flag)]
    out += [".SH HTTP"]
    for request, answer in HTTP:
        out += [".TP", "\\fB%s\\fR" % _roff(request), _roff(answer + ".")]
    out += [".SH SIGNALS"]
    for name, effect in SIGNALS:
        out += [".TP", "\\fB%s\\fR" % _roff(name), _roff(effect[:1].upper() + effect[1:] + ".")]
    out += [".SH EXIT STATUS",
            _roff("0 after SIGTERM or SIGINT; 2 when the server cannot start, with one line "
                  "'okera-authserver: <what, and what to do>' on stderr."),
            ".SH SEE ALSO", "\\fBokera\\-token\\fR(1)"]
    return "\n".join(out) + "\n"


TEXTS: Dict[str, Callable[[], str]] = {"long": long_help, "man": man_page, "version": version_text}
