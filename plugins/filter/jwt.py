# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that read a JWT without verifying it: for templates and reports, never for trust."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError
from ansible_collections.okera.auth.plugins.module_utils.tokens import (
    decode_unverified, expiry_facts,
)


def _decoded(token, filter_name):
    if not isinstance(token, (str, bytes)):
        raise AnsibleFilterError("%s expects a token text, got %s" % (filter_name, type(token).__name__))
    try:
        return decode_unverified(token)
    except OkeraAuthError as error:
        raise AnsibleFilterError("%s: %s" % (filter_name, error)) from None


def jwt_claims(token):
    """The token's claims, not verified."""
    return _decoded(token, "jwt_claims").claims


def jwt_header(token):
    """The token's protected header, not verified."""
    return _decoded(token, "jwt_header").header


def jwt_expires_in(token):
    """Seconds until the token's exp (negative once expired); an error when it has no exp."""
    seconds = expiry_facts(_decoded(token, "jwt_expires_in").claims)["expires_in"]
    if seconds is None:
        raise AnsibleFilterError("jwt_expires_in: the token has no numeric exp claim (seconds "
                                 "since 1970 within the years 1 to 9999)")
    return seconds


class FilterModule:
    def filters(self):
        return {"jwt_claims": jwt_claims, "jwt_header": jwt_header, "jwt_expires_in": jwt_expires_in}
