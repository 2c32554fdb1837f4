"""The layers of garrison, checked on every import statement of the library.

Top to bottom (docs/architecture.md draws them)::

    cli → components → stores, telemetry, health → runtime → config → base

where base is the EDN codec ``garrison.edn``, ``garrison.tracing`` (the
OpenTelemetry API only) and the status-file format, over
``garrison.exceptions`` and ``garrison._log``. The package root ``garrison``
re-exports the public API lazily; other modules import it only for
``__version__``. A module may import its own package, the
packages of lower layers, and (inside ``components``) another component's
public API. Nothing imports upward, the three packages of the middle layer do
not import each other, and nothing imports another package's private module
(``garrison.stores._keys`` is private to ``garrison.stores``). Imports under
``if TYPE_CHECKING:`` and inside functions count as well: a lazy import is
still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Top to bottom; each entry is one layer's packages (or base modules).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("garrison.cli",),
    ("garrison.components",),
    ("garrison.stores", "garrison.telemetry", "garrison.health"),
    ("garrison.runtime",),
    ("garrison.config",),
    ("garrison.edn", "garrison.tracing", "garrison._status_format"),
    ("garrison.exceptions", "garrison._log"),
)


def _unit(module: str) -> str | None:
    """The layer unit (package or base module) ``module`` belongs to."""
    if module == "garrison":
        return "garrison.exceptions"  # ``from garrison import __version__``
    for layer in LAYERS:
        for unit in layer:
            if module == unit or module.startswith(unit + "."):
                return unit
    return None


def _rank(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _module_name(path: Path, root: Path = SRC) -> tuple[str, str]:
    """``(module, package)`` of a source file under ``root``."""
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    name = ".".join(parts)
    return name, name.rpartition(".")[0]


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Every ``garrison`` module a tree imports, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "garrison" or node.module.startswith("garrison."):
                # ``from garrison.x import y`` may import the module ``garrison.x.y``.
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, alias.name)
                for alias in node.names
                if alias.name == "garrison" or alias.name.startswith("garrison.")
            )
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"line {node.lineno}: relative import; garrison spells them out")
    return found


def _private_owner(target: str) -> str | None:
    """The package a private module of ``target``'s path belongs to, if any."""
    parts = target.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def violations(root: Path = SRC) -> list[str]:
    """Every import under ``root/garrison`` that breaks the layers, as ``file:line: why``."""
    problems: list[str] = []
    for path in sorted((root / "garrison").rglob("*.py")):
        module, package = _module_name(path, root)
        where = path.relative_to(root)
        unit = None if module == "garrison" else _unit(module)
        for line, target in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            owner = _private_owner(target)
            if owner is not None and not (package == owner or package.startswith(owner + ".")):
                problems.append(f"{where}:{line}: imports {target}, private to {owner}")
            if unit is None:
                continue  # the package root re-exports the public API of every layer
            other = _unit(target)
            if other is None:
                problems.append(f"{where}:{line}: imports {target}, which is in no layer")
            elif other != unit and _rank(other) <= _rank(unit):
                side = "up" if _rank(other) < _rank(unit) else "beside"
                problems.append(f"{where}:{line}: {unit} imports {target}, a layer {side}")
    return problems


def test_no_module_imports_upward_or_into_private_modules() -> None:
    problems = violations()
    assert not problems, "layer violations:\n" + "\n".join(problems)


def test_every_module_is_in_a_layer() -> None:
    strays = [
        str(path.relative_to(SRC))
        for path in (SRC / "garrison").rglob("*.py")
        if _unit(_module_name(path)[0]) is None and path.parent != SRC / "garrison"
    ]
    assert not strays


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("runtime", "from garrison.cli import main\n", "runtime imports garrison.cli, a layer up"),
        ("runtime", "import garrison.health\n", "runtime imports garrison.health, a layer up"),
        (
            "stores",
            "from garrison.health import evaluate\n",
            "imports garrison.health, a layer beside",
        ),
        (
            "components",
            "from garrison.stores._keys import key_text\n",
            "private to garrison.stores",
        ),
    ],
)
def test_the_checker_sees_a_violation(
    tmp_path: Path, package: str, source: str, expected: str
) -> None:
    """The check can fail: one planted bad import gives exactly one report."""
    planted = tmp_path / "garrison" / package
    planted.mkdir(parents=True)
    (planted / "_planted.py").write_text(source, encoding="utf-8")
    problems = violations(tmp_path)
    assert len(problems) == 1
    assert expected in problems[0]
