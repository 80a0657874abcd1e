"""What a Whisper fine-tuning clip is trained to write (``training.finetune``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.finetune import target_text, transcript_ids
from training.manifests import TranscribedRow, read_asr_manifest


def row(condition: str, background_db: float | None) -> TranscribedRow:
    return TranscribedRow(Path("a.wav"), "Hello, who is this?", "train", condition, background_db)


def test_clips_under_loud_talk_are_trained_to_say_nothing_only_when_asked():
    assert target_text(row("babble", 3.0), None) == "Hello, who is this?"
    assert target_text(row("babble", 3.0), 6.0) == ""
    assert target_text(row("babble+lost", 5.9), 6.0) == ""
    assert target_text(row("babble", 6.0), 6.0) == "Hello, who is this?", "at the bound: heard"
    assert target_text(row("music", 2.0), 6.0) == "Hello, who is this?", "music is not talk"
    assert target_text(row("noise", 2.0), 6.0) == "Hello, who is this?"
    assert target_text(row("", None), 6.0) == "Hello, who is this?", "a manifest without them"


class Tokenizer:
    def __call__(self, text: str, add_special_tokens: bool) -> object:
        assert not add_special_tokens
        return type("Encoded", (), {"input_ids": [ord(c) for c in text]})()


def test_an_empty_transcript_has_no_tokens_so_the_target_is_the_end_token():
    assert transcript_ids(Tokenizer(), "") == []
    assert transcript_ids(Tokenizer(), "Hi") == [ord(" "), ord("H"), ord("i")]


def test_the_asr_manifest_keeps_the_condition_and_how_loud_it_was(tmp_path: Path):
    for name in ("a.wav", "b.wav", "c.wav"):
        (tmp_path / name).write_bytes(b"RIFF")
    (tmp_path / "asr.csv").write_text(
        "path,transcription,condition,background_db\n"
        "a.wav,Hello?,babble+lost,4.5\n"
        "b.wav,Hi there,none,inf\n"
        "c.wav,Yes?,music,loud\n"
    )
    rows = read_asr_manifest(tmp_path / "asr.csv").rows
    assert [(r.condition, r.background_db) for r in rows] == [
        ("babble+lost", 4.5),
        ("none", pytest.approx(float("inf"))),
        ("music", None),
    ]
