"""``amd-bridge detect`` as a user runs it: the installed console script, real models."""

import asyncio
import io
import json
import subprocess
import sys
import time
from pathlib import Path

from bridge.cli.detect import detect_files
from bridge.settings import Settings
from tests.test_engine_real import HUMAN_OPENER, MACHINE_GREETING

# The console script pip installed beside this interpreter (the README's install step).
AMD_BRIDGE = str(Path(sys.executable).with_name("amd-bridge"))


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([AMD_BRIDGE, *args], capture_output=True, text=True, timeout=300, env=env)


def test_detect_writes_one_line_per_file_in_order_and_reports_failures(speech_wav, tmp_path):
    human = speech_wav(HUMAN_OPENER, total_s=5.0)
    machine = speech_wav(MACHINE_GREETING, total_s=6.0)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF....WAVEfmt nonsense")
    proc = run("detect", str(human), str(empty), str(machine), str(garbage))
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(human), str(empty), str(machine), str(garbage)]
    ok = lines[0]
    assert ok["status"] == "HUMAN" and ok["label"] == "human"
    assert lines[2]["status"] == "MACHINE" and lines[2]["label"] == "machine"
    for line in (lines[0], lines[2]):
        assert set(line) >= {
            "file", "status", "label", "confidence", "proba_human", "transcript",
            "decision_audio_s", "elapsed_ms", "cause",
        }  # fmt: skip
        assert 0.0 <= line["proba_human"] <= 1.0
        assert line["cause"].startswith("CLASSIFIER-")
    assert "error" in lines[1] and "error" in lines[3]
    assert "2 of 4 files failed" in proc.stderr


def test_all_good_files_exit_zero(speech_wav):
    proc = run("detect", str(speech_wav(HUMAN_OPENER, total_s=5.0)), "--log-level", "ERROR")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "HUMAN"


def test_missing_classifier_fails_at_start_with_a_clear_message(speech_wav, tmp_path):
    proc = run(
        "detect", str(speech_wav(HUMAN_OPENER)), "--classifier", str(tmp_path / "missing.npz")
    )
    assert proc.returncode == 2
    assert "classifier file" in proc.stderr and "does not exist" in proc.stderr
    assert proc.stdout == ""


def test_corrupt_whisper_model_fails_at_start(speech_wav, tmp_path):
    broken = tmp_path / "whisper"
    broken.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (broken / name).write_text("garbage")
    proc = run("detect", str(speech_wav(HUMAN_OPENER)), "--whisper-model", str(broken))
    assert proc.returncode == 2
    assert "could not load Whisper model" in proc.stderr


def test_incomplete_whisper_directory_names_what_is_missing(speech_wav, tmp_path):
    proc = run("detect", str(speech_wav(HUMAN_OPENER)), "--whisper-model", str(tmp_path))
    assert proc.returncode == 2
    assert "lacks model.bin, config.json, tokenizer.json" in proc.stderr


def test_bad_setting_from_the_environment(speech_wav):
    env = {"AMD_WINDOW_S": "soon", "PATH": "/usr/bin:/bin"}
    proc = run("detect", str(speech_wav(HUMAN_OPENER)), env=env)
    assert proc.returncode == 2
    assert "AMD_WINDOW_S='soon'" in proc.stderr


def test_module_entry_point_matches_the_script():
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("amd-bridge ")


def test_missing_whisper_directory_is_not_taken_for_a_model_name(speech_wav, tmp_path):
    proc = run("detect", str(speech_wav(HUMAN_OPENER)), "--whisper-model", str(tmp_path / "gone"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_serve_with_the_audiosocket_port_taken_exits_2_naming_it():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run("serve", "--http-port", "0", "--audiosocket-port", str(port))
    assert proc.returncode == 2
    assert "cannot listen" in proc.stderr and str(port) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_with_a_corrupt_classifier_stops_before_listening(tmp_path):
    corrupt = tmp_path / "classifier.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    proc = run("serve", "--classifier", str(corrupt), "--http-port", "0", "--audiosocket-port", "0")
    assert proc.returncode == 2
    assert "classifier" in proc.stderr
    assert "listening" not in proc.stderr  # no port was opened


class SlowDetector:
    """The real detector behind an engine slower than the live deadline: every clip
    of a batch costs another 0.2 s (a bigger model, 30 s padding, a busy box)."""

    def __init__(self, detector) -> None:
        self._detector = detector

    def __getattr__(self, name: str):
        return getattr(self._detector, name)

    def analyze_batch(self, clips, heard_before=None):
        time.sleep(0.2 * len(clips))
        return self._detector.analyze_batch(clips, heard_before)


def test_a_model_slower_than_the_live_deadline_makes_detect_slow_not_wrong(detector, speech_wav):
    """A batch of 6 takes 1.2 s, past AMD_ANALYSIS_TIMEOUT_S=0.5: every file used to
    come back NOTSURE/ERROR while it waited its turn. A recording has no caller
    waiting, so batch commands wait for the engine."""
    human = speech_wav(HUMAN_OPENER, total_s=3.0)
    settings = Settings.load(environ={"AMD_ANALYSIS_TIMEOUT_S": "0.5", "AMD_BATCH_SIZE": "6"})
    unhurried = io.StringIO()
    asyncio.run(detect_files([human], Settings.load(environ={}), detector, unhurried))
    expected = json.loads(unhurried.getvalue())
    out = io.StringIO()
    failures = asyncio.run(detect_files([human] * 6, settings, SlowDetector(detector), out))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert failures == 0 and len(lines) == 6
    # What the same model decides with no deadline (the opener, or NOTSURE with low
    # confidence on its 3 s), never an error for having waited.
    assert expected["status"] in ("HUMAN", "NOTSURE") and "ERROR" not in expected["cause"]
    assert [(line["status"], line["cause"].split("-")[0]) for line in lines] == [
        (expected["status"], expected["cause"].split("-")[0])
    ] * 6, lines


def test_a_language_the_model_cannot_transcribe_is_refused_at_start(speech_wav):
    proc = run("detect", str(speech_wav(HUMAN_OPENER)), "--language", "auto")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "AMD_LANGUAGE='auto'" in proc.stderr and "English-only" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_language_check_names_what_a_multilingual_model_accepts(tmp_path):
    import pytest

    from bridge.engine.asr import check_language
    from bridge.errors import ConfigError

    check_language("es", ["en", "es", "fr"], tmp_path)
    with pytest.raises(ConfigError, match="use one of its 3 codes: en, es, fr"):
        check_language("auto", ["en", "es", "fr"], tmp_path)
