"""``garrison archive PATH``: a compressed, checksummed EDN archive that reads back equal."""

from __future__ import annotations

import gzip
import hashlib
from typing import TYPE_CHECKING

import pytest

from garrison.cli import main
from garrison.edn import Keyword, loads
from garrison.exceptions import StoreLoadError
from garrison.stores._edn_archive import read_archive
from tests._clojure import require_clojure, run_clojure

if TYPE_CHECKING:
    from pathlib import Path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    status = main([*args, "--config", str(config)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("mode", ["edn-only", "sqlite-only"])
def test_archive_writes_a_verified_archive_and_never_overwrites_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{tmp_path / "data"}"\n\n[components.database]\nmode = "{mode}"\n',
        encoding="utf-8",
    )
    assert run(capsys, config, "put", "session/a", "{:tags #{:x 1 1.0} :r 22/7}")[0] == 0
    assert run(capsys, config, "put", "cache/b", "[1, 2.5, null]")[0] == 0
    target = tmp_path / "archive" / "memory-final.edn.gz"

    status, out, _ = run(capsys, config, "archive", str(target))
    assert status == 0
    assert out.startswith(f"archived 2 keys ({mode} mode) to {target}: ")
    assert out.endswith("; read back equal\n")
    data = target.read_bytes()
    digest, name = (tmp_path / "archive" / "memory-final.edn.gz.sha256").read_text().split()
    assert (digest, name) == (hashlib.sha256(data).hexdigest(), "memory-final.edn.gz")
    text = gzip.decompress(data).decode()
    assert loads(text) == {
        Keyword("cache/b"): [1, 2.5, None],
        Keyword("session/a"): loads("{:tags #{:x 1 1.0} :r 22/7}"),
    }
    assert read_archive(target)["session/a"] == loads("{:tags #{:x 1 1.0} :r 22/7}")

    status, out, err = run(capsys, config, "archive", str(target))
    assert (status, out) == (1, "")
    assert "exists: an archive is never overwritten" in err
    assert target.read_bytes() == data


def test_a_damaged_archive_fails_its_checksum(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "garrison.toml"
    config.write_text(f'[runtime]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    assert run(capsys, config, "put", "session/a", "1")[0] == 0
    target = tmp_path / "a.edn.gz"
    assert run(capsys, config, "archive", str(target))[0] == 0
    damaged = bytearray(target.read_bytes())
    damaged[-5] ^= 0xFF
    target.write_bytes(bytes(damaged))
    with pytest.raises(StoreLoadError, match="does not match"):
        read_archive(target)


@pytest.mark.clojure
def test_clojure_reads_the_archive_equal_to_the_legacy_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    require_clojure()
    legacy = (
        '{:session/abc {:user :user/u1, :id #uuid "6f1b2c1e-8a5f-4d1e-9f5e-2b7f1f0c9a11"},\n'
        ' :project/p1 {:name "Zürich", :ratio 22/7, :big 12345678901234567890N, :d 1.5M},\n'
        ' :presence/s-1 {:at #inst "2024-05-01T10:00:00.000-00:00", :tags #{:a "b" 3}},\n'
        ' "plain" [\\x nil true 1.0 (1 2) {[1 2] "vector key"}]}\n'
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "memory.edn").write_text(legacy, encoding="utf-8")
    config = tmp_path / "garrison.toml"
    config.write_text(f'[runtime]\ndata_dir = "{data}"\n', encoding="utf-8")
    target = tmp_path / "final.edn.gz"
    assert run(capsys, config, "archive", str(target))[0] == 0
    script = """
    (require '[clojure.edn :as edn] '[clojure.java.io :as io])
    (let [[original archive] *command-line-args*
          legacy (edn/read-string (slurp original :encoding "UTF-8"))
          archived (with-open [in (java.util.zip.GZIPInputStream. (io/input-stream archive))]
                     (edn/read-string (slurp in :encoding "UTF-8")))]
      (println (= legacy archived) (count archived)))
    """
    assert run_clojure(script, data / "memory.edn", target) == "true 4\n"
