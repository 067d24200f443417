# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes object names as the API server accepts them, checked before they reach a manifest.

A name that the API server would refuse (upper case, a slash, a newline, ``..``) is refused here in
one line naming the option, so that nothing is rendered or applied with it.
"""
from __future__ import annotations

import re
from typing import Any, List

from ..errors import OkeraAuthError, shown

# DNS-1123 label (namespaces), subdomain (Secrets, workloads, pods) and DNS-1035 label (Services).
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_LABEL)
_DNS1123_SUBDOMAIN = re.compile(r"%s(?:\.%s)*" % (_LABEL, _LABEL))
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")
# The workloads a rotation restarts, and each kind's resource name (plural) in the apps/v1 API. Here,
# not beside the rollout requests, so that the RBAC filter does not import the kubernetes library.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
WORKLOAD_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}

_RULES = {
    "label": (_DNS1123_LABEL, 63, "a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a "
              "letter or digit, at most 63 characters"),
    "subdomain": (_DNS1123_SUBDOMAIN, 253, "a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each part "
                  "starting and ending with a letter or digit, at most 253 characters"),
    "service": (_DNS1035_LABEL, 63, "a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and "
                "ending with a letter or digit, at most 63 characters"),
}


class KubernetesNameError(OkeraAuthError):
    """A Kubernetes name or a list of names is not what the API server accepts."""


def checked_name(value: Any, option: str, rule: str = "subdomain") -> str:
    """``value`` when it is a name the API server accepts for ``rule`` (label, subdomain, service)."""
    pattern, limit, words = _RULES[rule]
    if not isinstance(value, str) or len(value) > limit or not pattern.fullmatch(value):
        raise KubernetesNameError("%s is %s; it must be %s" % (option, shown(value), words))
    return value


def checked_names(values: Any, option: str, rule: str = "subdomain") -> List[str]:
    """A list (or tuple) of names, each checked with checked_name; null is the empty list."""
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        raise KubernetesNameError("%s must be a list of names, not %s" % (option, shown(values)))
    return [checked_name(value, "%s item %d" % (option, index), rule) for index, value in enumerate(values)]
