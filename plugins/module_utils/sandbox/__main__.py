# Copyright: okera.auth contributors
# Apache License 2.0 (see LICENSE)
"""``python -m okera_auth.sandbox``: the same as the ``okera-auth-sandbox`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
