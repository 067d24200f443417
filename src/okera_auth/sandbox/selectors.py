# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Label and field selectors, in the syntax of ``?labelSelector=`` and ``?fieldSelector=``."""

from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional, Tuple

from okera_auth.module_utils.errors import shown
from .errors import bad_request

Matcher = Callable[[dict], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_REQUIREMENT = re.compile(r"\s*(%s)\s+(in|notin)\s*\(([^)]*)\)\s*$" % _KEY)
_EQUALITY_REQUIREMENT = re.compile(r"\s*(%s)\s*(==|=|!=)\s*(%s)\s*$" % (_KEY, _VALUE))
_EXISTS_REQUIREMENT = re.compile(r"\s*(!?)\s*(%s)\s*$" % _KEY)

# Fields each resource can be selected by, besides metadata.name and metadata.namespace.
_EXTRA_FIELDS = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "status.phase", "status.podIP"),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
}


def _split_requirements(text: str) -> List[str]:
    """Split on commas that are not inside a ``(...)`` value set."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _label_requirement(text: str) -> Matcher:
    match = _SET_REQUIREMENT.match(text)
    if match:
        key, operator = match.group(1), match.group(3)
        values = {value.strip() for value in match.group(4).split(",") if value.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    match = _EQUALITY_REQUIREMENT.match(text)
    if match:
        key, operator, value = match.group(1), match.group(3), match.group(4)
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    match = _EXISTS_REQUIREMENT.match(text)
    if match:
        negated, key = match.group(1) == "!", match.group(2)
        return (lambda labels: key not in labels) if negated else (lambda labels: key in labels)
    raise bad_request("unable to parse requirement: %s is not a label selector requirement" % shown(text.strip()))


def label_matcher(selector: Optional[str]) -> Matcher:
    """A predicate on objects for a ``labelSelector`` text; an empty selector matches all."""
    requirements = [_label_requirement(part) for part in _split_requirements(selector or "")]

    def matches(obj: dict) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)
    return matches


def _field_value(obj: dict, path: str) -> str:
    value = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_matcher(selector: Optional[str], plural: str) -> Matcher:
    """A predicate for a ``fieldSelector`` text; unknown fields are a 400 as on a real server."""
    allowed = ("metadata.name", "metadata.namespace") + _EXTRA_FIELDS.get(plural, ())
    requirements: List[Tuple[str, bool, str]] = []
    for part in _split_requirements(selector or ""):
        match = re.match(r"\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise bad_request("invalid field selector: %s" % shown(part.strip()))
        field, operator, value = match.groups()
        if field not in allowed:
            raise bad_request('field label not supported: %s' % field)
        requirements.append((field, operator != "!=", value))

    def matches(obj: dict) -> bool:
        return all((_field_value(obj, field) == value) == equal
                   for field, equal, value in requirements)
    return matches


def selector_matcher(selector: Optional[Dict]) -> Matcher:
    """A predicate for a structured ``LabelSelector`` (matchLabels, matchExpressions)."""
    selector = selector or {}
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []

    def expression_holds(labels: dict, expression: dict) -> bool:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In":
            return labels.get(key) in values
        if operator == "NotIn":
            return labels.get(key) not in values
        if operator == "Exists":
            return key in labels
        if operator == "DoesNotExist":
            return key not in labels
        return False

    def matches(labels: dict) -> bool:
        labels = labels or {}
        return (all(labels.get(key) == value for key, value in match_labels.items())
                and all(expression_holds(labels, expression) for expression in expressions))
    return matches
