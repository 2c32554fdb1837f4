"""The README's promises: its embedding example runs as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_opens_with_the_run_and_test_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    assert "garrison run" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert blocks[1].strip() in ci, ".ci/run must run the README's test command unchanged"


def test_embedding_example_runs_and_keeps_its_data(tmp_path: Path) -> None:
    (example,) = _python_blocks()
    script = tmp_path / "example.py"
    script.write_text(example)
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        outputs.append(done.stdout.splitlines())
    assert outputs[0] == ["hello ann (#1)", "1", "pass"]
    # The second run finds the first run's data on disk under ./data/.
    assert outputs[1] == ["hello ann (#2)", "2", "pass"]
    assert (tmp_path / "data").is_dir()
