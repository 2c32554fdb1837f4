"""The component dependency graph: validation, start levels, dependents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from garrison.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from garrison.runtime._component import Component

__all__ = ["ComponentGraph", "ComponentSpec"]


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """Everything the supervisor needs to create and place one component."""

    name: str
    component_class: type[Component]
    depends_on: tuple[str, ...] = ()
    restart: str = "permanent"
    critical: bool = True
    starts_first: bool = False
    config: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)


class ComponentGraph:
    """A validated dependency graph.

    Raises :class:`~garrison.ConfigError` for a duplicate name, an unknown
    dependency, or a cycle (the message prints the cycle path). Components
    declaring ``starts_first`` become dependencies of every other component.
    """

    def __init__(self, specs: Sequence[ComponentSpec]) -> None:
        self.specs: dict[str, ComponentSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise ConfigError(f"duplicate component name {spec.name!r}", path=spec.name)
            self.specs[spec.name] = spec
        first = [s.name for s in specs if s.starts_first]
        self.dependencies: dict[str, tuple[str, ...]] = {}
        for spec in specs:
            for dep in spec.depends_on:
                if dep not in self.specs:
                    raise ConfigError(
                        f"component {spec.name!r} depends on unknown component {dep!r} "
                        f"(known: {', '.join(sorted(self.specs))})",
                        path=f"components.{spec.name}.depends_on",
                    )
            implicit = (
                () if spec.starts_first else tuple(n for n in first if n not in spec.depends_on)
            )
            self.dependencies[spec.name] = (*implicit, *spec.depends_on)
        self._check_cycles()
        self.levels: list[list[str]] = self._levels()
        self.order: list[str] = [name for level in self.levels for name in level]
        self._position = {name: i for i, name in enumerate(self.order)}

    def _check_cycles(self) -> None:
        white, grey, black = 0, 1, 2
        color = dict.fromkeys(self.specs, white)
        for root in self.specs:
            if color[root] != white:
                continue
            # Iterative DFS: a deep chain of components must not hit the recursion limit.
            path: list[str] = [root]
            stack = [iter(self.dependencies[root])]
            color[root] = grey
            while stack:
                dep = next(stack[-1], None)
                if dep is None:
                    color[path.pop()] = black
                    stack.pop()
                    continue
                if color[dep] == grey:
                    cycle = [*path[path.index(dep) :], dep]
                    raise ConfigError("dependency cycle: " + " -> ".join(cycle))
                if color[dep] == white:
                    color[dep] = grey
                    path.append(dep)
                    stack.append(iter(self.dependencies[dep]))

    def _levels(self) -> list[list[str]]:
        level_of: dict[str, int] = {}
        for name in self._topological():
            deps = self.dependencies[name]
            level_of[name] = 1 + max((level_of[d] for d in deps), default=-1)
        levels: list[list[str]] = [[] for _ in range(max(level_of.values(), default=-1) + 1)]
        for name in self.specs:  # declaration order within a level
            levels[level_of[name]].append(name)
        return levels

    def _topological(self) -> list[str]:
        done: set[str] = set()
        out: list[str] = []
        for root in self.specs:
            stack = [(root, iter(self.dependencies[root]))]
            if root in done:
                continue
            while stack:
                name, deps = stack[-1]
                dep = next(deps, None)
                if dep is None:
                    stack.pop()
                    if name not in done:
                        done.add(name)
                        out.append(name)
                elif dep not in done:
                    stack.append((dep, iter(self.dependencies[dep])))
        return out

    def dependents(self, name: str) -> list[str]:
        """Every component that depends on ``name``, directly or not, in start order."""
        found = {name}
        for other in self.order:
            if any(dep in found for dep in self.dependencies[other]):
                found.add(other)
        found.discard(name)
        return sorted(found, key=self._position.__getitem__)

    def sort(self, names: Sequence[str] | set[str]) -> list[str]:
        """``names`` in start (dependency) order."""
        return sorted(names, key=self._position.__getitem__)
