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

import sys
from typing import Optional, Sequence

# The server speaks plain HTTP and signs with the OpenSSL inside cryptography, yet asyncio
# imports ssl and hashlib imports _hashlib, which map the system's libssl and libcrypto: 4.5 MiB
# of every sidecar's RSS. Both are kept out while the server's modules are imported (asyncio
# then has no TLS, hashlib uses its built-in SHA-2) and importable again afterwards, so that
# boto3 (--private-key-secret-id) imports ssl as usual when it is used.
_NOT_NEEDED = ("ssl", "_ssl", "_hashlib")
_KEPT_OUT = [name for name in _NOT_NEEDED if name not in sys.modules]
sys.modules.update(dict.fromkeys(_KEPT_OUT))
try:
    import asyncio

    from okera_auth.module_utils.errors import OkeraAuthError
    from okera_auth.module_utils.keys import HAS_CRYPTO_LIBS
    from .app import AuthServer, tidy_message
    from .events import EventLog
    from .options import parse_settings
finally:
    for _kept_out in _KEPT_OUT:
        if sys.modules.get(_kept_out, "") is None:
            del sys.modules[_kept_out]

EXIT_USAGE = 2
# With --workers N, a signing thread whose RSA operation is done waits for the GIL to write
# the file; CPython's default 5 ms switch interval lets the event loop keep it that long. With
# 0.5 ms, alternating wrk runs on 2 busy cores gave 1,580 instead of 1,080 tokens/s on average
# (RS512, noisy). Without signing threads (the default) there is no one to switch to.
GIL_SWITCH_INTERVAL = 0.0005


def _fail(message: str) -> None:
    sys.stderr.write("okera-authserver: %s\n" % tidy_message(message))


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
