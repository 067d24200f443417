# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the sandbox cluster: API errors as Kubernetes Status objects, and setup errors."""

from __future__ import annotations

from typing import Optional

from okera_auth.module_utils.errors import OkeraAuthError


class SandboxError(OkeraAuthError):
    """The sandbox cannot do what was asked (missing state, port in use, bad option)."""


class ApiError(Exception):
    """An API request fails; rendered as a ``Status`` object with the same code and reason."""

    def __init__(self, code: int, reason: str, message: str,
                 details: Optional[dict] = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def _qualified(plural: str, group: str) -> str:
    return "%s.%s" % (plural, group) if group else plural


def _details(plural: str, group: str, name: str) -> dict:
    details = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return details


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", '%s "%s" not found' % (_qualified(plural, group), name),
                    _details(plural, group, name))


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (_qualified(plural, group), name),
                    _details(plural, group, name))


def conflict(plural: str, group: str, name: str, why: str = "the object has been modified; please "
             "apply your changes to the latest version and try again") -> ApiError:
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                    % (_qualified(plural, group), name, why), _details(plural, group, name))


def invalid(kind: str, group: str, name: str, causes: list) -> ApiError:
    """``causes``: (field, reason, message) triples, as the API server lists them."""
    qualified_kind = "%s.%s" % (kind, group) if group else kind
    text = "; ".join("%s: %s" % (field, message) for field, _reason, message in causes)
    details = {"name": name, "kind": kind,
               "causes": [{"reason": reason, "message": message, "field": field}
                          for field, reason, message in causes]}
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (qualified_kind, name, text), details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)
