# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""okera-authserver: mints per-user JWTs into group-readable files, as Okera's authserver does.

Drop-in: the same flags and defaults as Okera's binary (-p 5001, -d /tmp/tokens,
-k KEY, -a rsa512, --disable-delete, -g okera), ``GET /<user>`` answers the path
of a new token file, which is deleted 10 s later, and the log lines are Go's, on
stderr. Every flag can also come from an ``OKERA_AUTHSERVER_<LONG_NAME>`` environment
variable, and with ``--tutorial-env`` from the names of Okera's tutorial container;
flags win. ``--help-long``, ``--help-man`` and ``--version`` print and exit.
Start-up problems are one line on stderr and exit code 2.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Optional, Sequence

from okera_auth.module_utils.errors import OkeraAuthError
from okera_auth.module_utils.keys import HAS_CRYPTO_LIBS
from .app import AuthServer
from .events import EventLog
from .options import parse_settings

EXIT_USAGE = 2
# With --workers N, a signing thread whose RSA operation is done waits for the GIL to write
# the file; CPython's default 5 ms switch interval lets the event loop keep it that long. With
# 0.5 ms, alternating wrk runs on 2 busy cores gave 1,580 instead of 1,080 tokens/s on average
# (RS512, noisy). Without signing threads (the default) there is no one to switch to.
GIL_SWITCH_INTERVAL = 0.0005


def _fail(message: str) -> None:
    sys.stderr.write("okera-authserver: %s\n" % message)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        settings = parse_settings(argv)
    except OkeraAuthError as error:
        _fail(str(error))
        return EXIT_USAGE
    log = EventLog(settings.log_format)
    if not HAS_CRYPTO_LIBS:
        _fail("PyJWT and cryptography are required: pip install okera-auth")
        return EXIT_USAGE
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        server = AuthServer(settings, log)
        if server.processes > 1:
            from .supervisor import Supervisor  # pylint: disable=import-outside-toplevel  # not in a sidecar

            return Supervisor(server).run()
        asyncio.run(server.run())
    except OkeraAuthError as error:
        _fail(str(error))
        return EXIT_USAGE
    except OSError as error:  # the environment changed under the server while it started
        _fail("%s%s" % (error.strerror or error, " (%s)" % error.filename if error.filename else ""))
        return EXIT_USAGE
    return 0
