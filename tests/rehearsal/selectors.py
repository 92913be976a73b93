"""Label and field selectors, matched as kube-apiserver matches them (for the API stand-in).

Clients filter lists and watches with these strings (KubeSpawner's ``component=singleuser-server``,
the meter's ``parhelion.dev/metered=true``, a Service's selector), so the stand-in parses the
full label selector grammar instead of equality alone: a selector it misreads would make a test
pass on objects the real API server would never have returned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tests.rehearsal.errors import ApiError

_SET_TERM = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # =, !=, in, notin, exists, !
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "=":
                return present and value in self.values
            case "!=":
                return not present or value not in self.values
            case "in":
                return present and value in self.values
            case "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "!":
                return not present
        raise AssertionError(self.operator)


def _terms(text: str) -> list[str]:
    """Split on the commas that are not inside a set's parentheses."""
    terms, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def parse_label_selector(selector: str | Mapping[str, str] | None) -> list[Requirement]:
    """A selector string (``a=b,c!=d,e in (x,y),f notin (z),g,!h``) or an equality mapping."""
    if not selector:
        return []
    if isinstance(selector, Mapping):
        return [Requirement(k, "=", frozenset([str(v)])) for k, v in selector.items()]
    requirements = []
    for term in _terms(selector):
        if found := _SET_TERM.match(term):
            values = frozenset(v.strip() for v in found.group(3).split(",") if v.strip())
            requirements.append(Requirement(found.group(1), found.group(2), values))
        elif "!=" in term:
            key, value = term.split("!=", 1)
            requirements.append(Requirement(key.strip(), "!=", frozenset([value.strip()])))
        elif "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            requirements.append(Requirement(key.strip(), "=", frozenset([value.strip()])))
        elif term.startswith("!"):
            requirements.append(Requirement(term[1:].strip(), "!"))
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", term):
            requirements.append(Requirement(term, "exists"))
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
    return requirements


def selector_from_label_selector(selector: Mapping | None) -> list[Requirement]:
    """A LabelSelector object (``matchLabels`` + ``matchExpressions``) as requirements."""
    if not selector:
        return []
    requirements = parse_label_selector(selector.get("matchLabels") or {})
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        operator = operators[expression["operator"]]
        requirements.append(
            Requirement(expression["key"], operator, frozenset(expression.get("values") or []))
        )
    return requirements


def label_selector_text(selector: Mapping | None) -> str:
    """A LabelSelector object as the string form (a Scale's ``status.selector``)."""
    parts = []
    for requirement in selector_from_label_selector(selector):
        values = ",".join(sorted(requirement.values))
        parts.append(
            {
                "=": f"{requirement.key}={values}",
                "in": f"{requirement.key} in ({values})",
                "notin": f"{requirement.key} notin ({values})",
                "exists": requirement.key,
                "!": f"!{requirement.key}",
            }[requirement.operator]
        )
    return ",".join(parts)


def labels_match(requirements: list[Requirement], obj: Mapping) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


def _field_value(obj: Mapping, path: str) -> str:
    """A dotted path's value as the API server compares it: absent is the empty string."""
    value: object = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(selector: str | None) -> Callable[[Mapping], bool]:
    """``metadata.name=x,status.phase!=Failed``: any dotted path, with =, == and !=.

    (The real API server accepts only a few fields per kind; a generic path lookup accepts a
    superset, which a test cannot tell apart from the real answer for the supported ones.)
    """
    terms = []
    for term in _terms(selector or ""):
        if "!=" in term:
            path, value = term.split("!=", 1)
            terms.append((path.strip(), False, value.strip()))
        elif "=" in term:
            path, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            terms.append((path.strip(), True, value.strip()))
        else:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")

    def matches(obj: Mapping) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in terms)

    return matches
