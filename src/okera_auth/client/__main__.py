# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m okera_auth.client``: the same as the ``okera-token`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
