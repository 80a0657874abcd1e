"""``amd-train bulk-eval``: recordings in, the seed's CSV out, resumable, in process
or over /ws/amd against the running service."""

from __future__ import annotations

import asyncio
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.server import running_service
from bridge.settings import Settings
from tests.test_engine_real import HUMAN_OPENER, MACHINE_GREETING
from training.bulk import COLUMNS, Progress, ResultsCsv, evaluate, list_inputs, websocket_decider

AMD_TRAIN = str(Path(sys.executable).with_name("amd-train"))


@pytest.fixture
def folder(speech_wav, tmp_path) -> Path:
    root = tmp_path / "calls"
    (root / "b").mkdir(parents=True)
    shutil.copy(speech_wav(HUMAN_OPENER, total_s=5.0), root / "a-human.wav")
    shutil.copy(speech_wav(MACHINE_GREETING, total_s=6.0), root / "b" / "c-machine.wav")
    shutil.copy(speech_wav(MACHINE_GREETING, total_s=6.0), root / "b" / "d-machine.wav")
    (root / "e-broken.wav").write_bytes(b"RIFF not really")
    (root / "notes.txt").write_text("not audio")
    return root


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def bulk_eval(folder: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AMD_TRAIN, "bulk-eval", str(folder), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_folder_becomes_one_row_per_recording(folder, tmp_path):
    out = tmp_path / "results.csv"
    proc = bulk_eval(folder, out)
    assert proc.returncode == 1, proc.stderr  # as detect: some files failed
    assert "1 of 4 files failed" in proc.stderr
    rows = {Path(r["file"]).name: r for r in read_rows(out)}
    assert set(rows) == {"a-human.wav", "c-machine.wav", "d-machine.wav", "e-broken.wav"}
    assert (rows["a-human.wav"]["type"], rows["a-human.wav"]["label"]) == ("final", "human")
    assert rows["c-machine.wav"]["label"] == "machine"
    assert float(rows["c-machine.wav"]["confidence"]) >= 0.8
    assert rows["c-machine.wav"]["transcript"]
    assert float(rows["c-machine.wav"]["elapsed_ms"]) > 0
    assert rows["e-broken.wav"]["type"] == "error" and rows["e-broken.wav"]["transcript"]
    assert "4/4 files" in proc.stderr  # the progress line


def test_an_interrupted_run_resumes_without_redoing_or_duplicating(folder, tmp_path):
    out = tmp_path / "results.csv"
    first = sorted(list_inputs(folder))[0]
    # What an interruption leaves: a header, one finished row, half of the next.
    out.write_text(
        ",".join(COLUMNS) + "\n" + f"{first},final,human,0.99,0.99,hello,12.0\n" + "/x/half-wr"
    )
    proc = bulk_eval(folder, out)
    assert proc.returncode == 1, proc.stderr  # the broken file
    rows = read_rows(out)
    files = [r["file"] for r in rows]
    assert len(files) == len(set(files)) == 4
    kept = [first, "final", "human", "0.99", "0.99", "hello", "12.0"]
    assert rows[0] == dict(zip(COLUMNS, kept, strict=True))
    assert "half-wr" not in out.read_text()
    assert "3/3 files" in proc.stderr  # only what was left


def test_a_csv_of_paths_relative_to_it(folder, tmp_path):
    listing = folder / "list.csv"
    listing.write_text("path,label\na-human.wav,human\nb/c-machine.wav,machine\n\n")
    assert [Path(p).name for p in list_inputs(listing)] == ["a-human.wav", "c-machine.wav"]
    (tmp_path / "bad.csv").write_text("name\nx.wav\n")
    with pytest.raises(Exception, match="path"):
        list(list_inputs(tmp_path / "bad.csv"))


def test_over_the_websocket_api_as_the_seed_did(folder, tmp_path, detector):
    out = tmp_path / "ws.csv"
    settings = Settings.load(environ={"AMD_HTTP_PORT": "0", "AMD_AUDIOSOCKET_PORT": "0"})

    async def main():
        async with running_service(settings, detector) as service:
            url = f"ws://127.0.0.1:{service.http_port}/ws/amd"
            results = ResultsCsv(out)
            progress = Progress(None)
            await evaluate(
                list_inputs(folder), results, websocket_decider(url, 20, None), 2, progress
            )
            results.close()
            return progress.done

    assert asyncio.run(main()) == 4
    rows = {Path(r["file"]).name: r for r in read_rows(out)}
    assert rows["a-human.wav"]["label"] == "human" and rows["a-human.wav"]["type"] == "final"
    assert rows["d-machine.wav"]["label"] == "machine"
    assert rows["e-broken.wav"]["type"] == "error"


def test_ray_data_in_local_mode_gives_the_same_rows_and_resumes(folder, tmp_path):
    local, on_ray = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert bulk_eval(folder, local).returncode == 1  # the broken file
    first = subprocess.run(
        [AMD_TRAIN, "bulk-eval", str(folder / "b"), "--out", str(on_ray), "--ray"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(read_rows(on_ray)) == 2  # the sub-folder only
    again = subprocess.run(
        [AMD_TRAIN, "bulk-eval", str(folder), "--out", str(on_ray), "--ray", "--ray-actors", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 1, again.stderr[-3000:]  # the broken file
    ray_rows = read_rows(on_ray)
    assert len(ray_rows) == len({r["file"] for r in ray_rows}) == 4  # none twice
    # Labels, not transcripts: a clip's transcript can shift with what it is batched with.
    assert {r["file"]: (r["type"], r["label"]) for r in ray_rows} == {
        r["file"]: (r["type"], r["label"]) for r in read_rows(local)
    }
    assert all(r["transcript"] for r in ray_rows)


def test_in_process_bulk_eval_waits_for_an_engine_slower_than_the_live_deadline(
    detector, speech_wav
):
    """However many files the caller starts at once (Ray hands over whole batches),
    none fails for waiting its turn behind a slow engine."""
    from bridge.engine import build_batching_engine
    from tests.test_cli_detect import SlowDetector
    from training.bulk import in_process_decider

    human = str(speech_wav(HUMAN_OPENER, total_s=3.0))
    settings = Settings.load(environ={"AMD_ANALYSIS_TIMEOUT_S": "0.5", "AMD_BATCH_SIZE": "3"})

    async def main():
        engine = build_batching_engine(settings, SlowDetector(detector))
        try:
            decide = in_process_decider(settings, engine)
            return await asyncio.gather(*(decide(human) for _ in range(9)))
        finally:
            await engine.aclose()

    async def unhurried():
        engine = build_batching_engine(Settings.load(environ={}), detector)
        try:
            return await in_process_decider(Settings.load(environ={}), engine)(human)
        finally:
            await engine.aclose()

    expected = asyncio.run(unhurried())
    rows = asyncio.run(main())
    # What the same model decides with no deadline (the opener, or NOTSURE with low
    # confidence on its 3 s), never an error row for having waited.
    assert expected["type"] == "final" and expected["label"] in ("human", "notsure")
    assert [(row["type"], row["label"]) for row in rows] == [("final", expected["label"])] * 9
