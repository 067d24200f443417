# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durations as the collection writes them (30d, 24h, 1h30m) turned into seconds, for templates."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError
from ansible_collections.okera.auth.plugins.module_utils.tokens import parse_duration


def duration_seconds(value, name=None):
    """Seconds in a duration such as 7d, 12h or 3600, with the token library's rules; ``name`` (the
    variable's) starts the message of a refusal, so that a role's check says which variable is wrong."""
    try:
        return parse_duration(value)
    except OkeraAuthError as error:
        raise AnsibleFilterError("duration_seconds: %s%s" % ("%s: " % name if isinstance(name, str) and name else "", error)) from None


class FilterModule:
    def filters(self):
        return {"duration_seconds": duration_seconds}
