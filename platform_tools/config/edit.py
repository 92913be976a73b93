"""Changing a deployed platform.yaml: what the Ansible quotas and roster plays do.

Admins keep groups, quotas, budgets and rosters in their inventory; the plays put them
into the platform.yaml the hub, gateway and accounting service already follow live. A
change replaces whole named entries (a group is what the inventory says it is, not a
blend with what was there), leaves every other section, comment and key order as it was,
and is validated as a complete platform.yaml before anything is written: a bad change
names the field and changes nothing.
"""

from __future__ import annotations

import fcntl
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from platform_tools.config.configmap import write_atomically
from platform_tools.config.loader import ConfigError, ConfigIssue, _parse_yaml, _plain, parse_platform


@dataclass(frozen=True)
class PlatformChange:
    """What to set: named entries of ``groups`` and ``users``, logins added to ``hub.users``."""

    groups: dict[str, Any] | None = None
    users: dict[str, Any] | None = None
    hub_users: list[str] | None = None
    remove_groups: list[str] | None = None


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    # one value given to two groups must be written out twice: the loader refuses aliases
    yaml.representer.ignore_aliases = lambda *_: True
    return yaml


def _section(tree: CommentedMap, key: str) -> CommentedMap:
    if tree.get(key) is None:
        tree[key] = CommentedMap()
    return tree[key]


def _set_entry(section: CommentedMap, name: str, value: Any) -> None:
    """Replace one named entry, unless it already says the same (its layout and comments stay)."""
    if name in section and _canonical(section[name]) == _canonical(value):
        return
    section[name] = value


def _canonical(node: Any) -> Any:
    """Data as compared: 25 and 25.0 are equal, as are a YAML date and its ISO text."""
    node = _plain(node)
    if isinstance(node, dict):
        return {key: _canonical(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_canonical(item) for item in node]
    if isinstance(node, float) and node.is_integer():
        return int(node)
    if isinstance(node, date):
        return node.isoformat()
    return node


def changed_text(text: str, change: PlatformChange, source: str = "platform.yaml") -> str:
    """The new platform.yaml text; ConfigError (naming the field) if it would not be valid."""
    tree = _parse_yaml(text, source)
    if not isinstance(tree, CommentedMap):
        raise ConfigError([ConfigIssue(source, 1, 1, (), "the file must be a mapping of sections")])
    for name, group in (change.groups or {}).items():
        _set_entry(_section(tree, "groups"), name, group)
    for name in change.remove_groups or []:
        if name in (tree.get("groups") or {}):
            del tree["groups"][name]
    for name, override in (change.users or {}).items():
        _set_entry(_section(tree, "users"), name, override)
    if change.hub_users:
        hub = _section(tree, "hub")
        known = list(hub.get("users") or [])
        hub["users"] = known + [u for u in change.hub_users if u not in known]
    out = io.StringIO()
    _yaml().dump(tree, out)
    new_text = out.getvalue()
    parse_platform(new_text, source=f"{source} (with the change)")
    return new_text


@contextmanager
def edit_lock(path: Path) -> Iterator[None]:
    """Held (``flock``, exclusive) around one read-modify-write of ``path``.

    Two plays, or a play and ``parhelion class close``, that change the file at once each read
    the same text and the second write dropped the first one's change. The lock is a file of
    its own beside platform.yaml (``.platform.yaml.lock``, 0600): the config is replaced
    atomically, so a lock on the config itself would be a lock on a file no longer there.
    Readers (the hub, gateway and accounting service) never take it.
    """
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def change_file(path: str | Path, change: PlatformChange, write: bool = True) -> tuple[str, str]:
    """Apply ``change`` to the file (atomically, only if it differs, under ``edit_lock``,
    keeping the file's mode); (before, after) texts."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([ConfigIssue(str(path), None, None, (), "file not found")])
    with edit_lock(path):
        try:
            before = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([ConfigIssue(str(path), None, None, (), "file not found")]) from None
        after = changed_text(before, change, source=str(path))
        if write and after != before:
            write_atomically(path, after)
    return before, after
