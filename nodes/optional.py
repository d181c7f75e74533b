"""Optional packages: which nodes need which, said once at start-up and again when such a node runs.

A node class lists what it needs in ``NEEDS`` (a tuple of :class:`Needs`). The
check is ``importlib.util.find_spec`` only: nothing heavy is imported to find
out, so start-up stays fast. Nodes whose package is missing stay listed (saved
workflows keep loading) and fail, when they run, with the message logged at
start-up.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Iterable, Optional

from ..search.errors import ChunkwiseError

log = logging.getLogger("chunkwise")


@dataclass(frozen=True)
class Needs:
    """``module`` (import name) from the pip package ``pip``; ``option``: only when that input is on."""

    module: str
    pip: str
    option: str = ""


def find(module: str):
    """The module's spec, or None when it cannot be imported (not installed, or blocked by an import hook)."""
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def installed(module: str) -> bool:
    return find(module) is not None


def _needs_of(node) -> tuple[Needs, ...]:
    return tuple(getattr(node, "NEEDS", ()))


def _display_name(node) -> str:
    return node.define_schema().display_name or node.__name__


def missing_message(need: Needs, nodes: Iterable) -> str:
    """One line: the missing package, the nodes (and options) that need it, and the pip command."""
    users: dict[str, str] = {}
    for node in nodes:
        for other in _needs_of(node):
            if other.module == need.module:
                users.setdefault(_display_name(node), other.option)
    if len(users) == 1:
        [(name, option)] = users.items()
        who = f"the {name} node needs it" + (f" for {option}" if option else "")
    else:
        names = [f"{name} (for {option})" if option else name for name, option in users.items()]
        who = f"the {', '.join(names[:-1])} and {names[-1]} nodes need it"
    return f"chunkwise: {need.module} is not installed: {who} (pip install {need.pip})"


def log_missing(nodes: list) -> list[str]:
    """At start-up: one warning per missing optional package of ``nodes``; returns the lines logged."""
    lines = []
    seen: set[str] = set()
    for node in nodes:
        for need in _needs_of(node):
            if need.module in seen:
                continue
            seen.add(need.module)
            if not installed(need.module):
                lines.append(missing_message(need, nodes))
                log.warning("%s", lines[-1])
    return lines


def require(node, **options) -> None:
    """Raise the start-up message when a package ``node`` needs (with these input values) is missing."""
    from . import node_list  # the node modules are loaded by now

    for need in _needs_of(node):
        if need.option and not options.get(need.option):
            continue
        if not installed(need.module):
            raise ChunkwiseError(missing_message(need, [*node_list(), node]))


def first_location(module: str) -> Optional[str]:
    """The package folder of ``module`` without importing it, or None."""
    spec = find(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]
