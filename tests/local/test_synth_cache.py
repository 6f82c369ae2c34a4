"""The synthesized assembly's cache (kubestep_local/synth.py) shared by runtimes that start at the
same time, as parallel test workers' do: one synthesizes, the others wait and read its assembly."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kubestep_local import synth


@pytest.fixture
def fake_synth(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """`synthesize` replaced by a slow stand-in that writes a template; the calls it got."""
    calls: list[Path] = []
    lock = threading.Lock()

    def synthesize(outdir: Path, manifest_path: Path | None = None, project_root: Path = synth.PROJECT_ROOT) -> Path:
        with lock:
            calls.append(Path(outdir))
        time.sleep(0.3)  # long enough for the other starts to find no assembly yet
        template = Path(outdir) / "assembly" / "stack.template.json"
        template.parent.mkdir(parents=True)
        template.write_text("{}")
        return template

    monkeypatch.setattr(synth, "synthesize", synthesize)
    monkeypatch.setattr(synth, "source_hash", lambda *args, **kwargs: "key")
    return calls


def test_runtimes_starting_together_synthesize_once(tmp_path: Path, fake_synth: list[Path]) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        templates = list(pool.map(lambda _: synth.cached_synthesize(tmp_path), range(4)))
    assert len(fake_synth) == 1
    assert set(templates) == {tmp_path / "key" / "assembly" / "stack.template.json"}
    assert templates[0].read_text() == "{}"


def test_an_assembly_without_its_marker_is_synthesized_again(tmp_path: Path, fake_synth: list[Path]) -> None:
    (tmp_path / "key" / "assembly").mkdir(parents=True)  # a synth interrupted before the marker
    template = synth.cached_synthesize(tmp_path)
    assert len(fake_synth) == 1 and template.read_text() == "{}"
    assert synth.cached_synthesize(tmp_path) == template and len(fake_synth) == 1
