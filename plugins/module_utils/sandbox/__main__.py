# Copyright: okera.auth contributors
# Apache License 2.0 (see LICENSE)
"""``python -m okera_auth.sandbox``: the same as the ``okera-auth-sandbox`` command."""

import sys

from .cli import main

sys.exit(main())
