# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A value as the collection's messages quote it, for the roles' fail messages."""

from __future__ import annotations

from ansible_collections.okera.auth.plugins.module_utils.errors import shown as shown_value


def shown(value):
    """repr of ``value`` when it is one short line that looks like no key or token, else its length only."""
    return shown_value(value)


class FilterModule:
    def filters(self):
        return {"shown": shown}
