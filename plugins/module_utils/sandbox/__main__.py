# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m okera_auth.sandbox``: the same as the ``okera-auth-sandbox`` command."""

import sys

from .cli import main

sys.exit(main())
