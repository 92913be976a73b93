"""Read platform.yaml and report every problem with file, line and field path.

YAML is parsed with ruamel's round-trip loader, which remembers where each key and
item stood; pydantic's error locations are then mapped back onto those positions. The
result is messages such as::

    platform.yaml:14:5: profiles.small.cpu_limit: must be greater than 0 (got -1)

All problems are collected before anything is reported: a person fixes a file in one
pass, and no process starts from a half-valid configuration.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent

from platform_tools.config.models import PATTERN_MEANINGS, PlatformConfig
from platform_tools.config.references import Loc, ReferenceIssues


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file."""

    source: str
    line: int | None  # 1-based
    column: int | None  # 1-based
    path: Loc
    message: str

    @property
    def field(self) -> str:
        """The dotted field path, with list indices in brackets: ``groups.a.members[2]``."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return text

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ConfigError(Exception):
    """A configuration that cannot be used, with every issue found in it."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


def load_platform(path: str | Path) -> PlatformConfig:
    """Load and validate a platform.yaml file; raise ConfigError naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(path), None, None, (), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(str(path), None, None, (), f"cannot read: {exc}")]) from None
    return parse_platform(text, source=str(path))


def parse_platform(text: str, source: str = "<platform.yaml>") -> PlatformConfig:
    """Validate platform.yaml text; ``source`` names it in messages."""
    tree = _parse_yaml(text, source)
    if not isinstance(tree, dict):
        raise ConfigError(
            [ConfigIssue(source, 1, 1, (), "the file must be a mapping of sections (hub:, ...)")]
        )
    try:
        return PlatformConfig.model_validate(_plain(tree))
    except ValidationError as exc:
        raise ConfigError(validation_issues(exc, tree, source, PlatformConfig)) from None


def _parse_yaml(text: str, source: str) -> Any:
    """The round-trip tree of ``text``; ConfigError at the first YAML problem or alias.

    Aliases (``*name``, and ``<<: *name`` merges) are refused before any object is built:
    each one is a copy of its anchor once the tree becomes plain data and a model, so nine
    nested ones in 453 bytes (a "billion laughs") took 5.8 s and 261 MB in every process
    that follows platform.yaml. Nothing Parhelion or its Ansible plays write uses them.
    """
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        for event in yaml.parse(io.StringIO(text)):
            if isinstance(event, AliasEvent):
                mark = event.start_mark
                raise ConfigError(
                    [
                        ConfigIssue(
                            source,
                            mark.line + 1,
                            mark.column + 1,
                            (),
                            f"YAML: alias *{event.anchor} is not accepted here; write the value out "
                            "(aliases can expand a small file into a huge one)",
                        )
                    ]
                )
        return yaml.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = " ".join(filter(None, [exc.context, exc.problem])).strip()
        problem = problem.splitlines()[0] if problem else "invalid YAML"
        raise ConfigError([ConfigIssue(source, line, column, (), f"YAML: {problem}")]) from None


def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes as plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def locate(tree: Any, path: Loc) -> tuple[int | None, int | None]:
    """1-based line and column of ``path`` in a ruamel tree (its nearest existing parent)."""
    line = column = None
    node = tree
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line, column = node.lc.key(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, column = node.lc.item(part)
            node = node[part]
        else:
            if line is None and hasattr(node, "lc"):
                line, column = node.lc.line, node.lc.col
            break
    if line is None:
        return None, None
    return line + 1, column + 1


def validation_issues(
    exc: ValidationError, tree: Any, source: str, model: type[BaseModel]
) -> list[ConfigIssue]:
    """Turn pydantic's errors into located, human-worded issues."""
    issues: list[ConfigIssue] = []
    for error in exc.errors(include_url=False):
        loc: Loc = _without_union_tags(model, tuple(part for part in error["loc"] if part != "[key]"))
        reference = (error.get("ctx") or {}).get("error")
        if isinstance(reference, ReferenceIssues):
            for sub_loc, message in reference.issues:
                issues.append(ConfigIssue(source, *locate(tree, loc + sub_loc), loc + sub_loc, message))
            continue
        message = _message(error, model)
        issues.append(ConfigIssue(source, *locate(tree, loc), loc, message))
    issues.sort(key=lambda issue: (issue.line or 0, issue.column or 0))
    return issues


def _message(error: dict[str, Any], model: type[BaseModel]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        allowed = _allowed_fields(model, tuple(error["loc"][:-1]))
        hint = difflib.get_close_matches(name, allowed, n=1)
        message = f"unknown field {name!r}"
        if hint:
            return f"{message}; did you mean {hint[0]!r}?"
        return f"{message} (allowed: {', '.join(allowed)})" if allowed else message
    if kind == "missing":
        return "required field is missing"
    message = error["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        message = f"invalid value: {PATTERN_MEANINGS.get(pattern, f'must match {pattern}')}"
    else:
        message = message[0].lower() + message[1:] if message else message
    scalar = value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))
    if scalar and kind not in {"missing", "value_error"}:
        message += f" (got {value!r})"
    return message


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model section at ``loc``, for did-you-mean hints."""
    current: Any = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if isinstance(part, int) or part == "[key]":
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            # a mapping key (a profile's name, say): the model is the mapping's values
            continue
        tags = _tags(field.annotation)
        if tags and parts and parts[0] in tags:  # hub.auth.oidc...: the variant its type names
            current = tags[parts.pop(0)]
        else:
            current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside ``X | None``, ``dict[str, X]`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in _union_members(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _union_members(annotation: Any) -> tuple[Any, ...]:
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__metadata__", None) is not None:  # Annotated[X | Y, Field(...)]
        return _union_members(args[0])
    return args


def _tags(annotation: Any) -> dict[str, Any]:
    """The ``type`` tags of a union of models, each with its model (empty if not such a union)."""
    found = {}
    for member in _union_members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel) and "type" in member.model_fields:
            for tag in getattr(member.model_fields["type"].annotation, "__args__", ()):
                found[tag] = member
    return found if len(found) > 1 else {}


def _without_union_tags(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """``loc`` without the tags pydantic inserts after a tagged union's field
    (``hub.auth.oidc.token_url`` is ``hub.auth.token_url`` in the file)."""
    out: list[Any] = []
    current: Any = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        out.append(part)
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            continue
        tags = _tags(field.annotation)
        if tags and parts and parts[0] in tags:
            current = tags[parts.pop(0)]
        else:
            current = _inner_model(field.annotation)
    return tuple(out)
