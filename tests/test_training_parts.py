"""The training package's small parts: the CTranslate2 reader, ASR manifests and
their bad rows, a fixed train/test split, WER, corpus splits and phrases."""

from __future__ import annotations

import contextlib
import struct
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.engine.models import embedded_whisper_dir
from training.asr_eval import (
    NOT_GIVEN,
    by_background,
    heard_prefix_length,
    heard_script,
    load,
    load_recordings,
    normalize,
    word_errors,
    words_in_order,
)
from training.classifier import Example, split_by_group
from training.corpus import held_out, opening_phrases, split_templates
from training.ct2_whisper import (
    Ct2FormatError,
    hf_state_dict,
    parse_model_bin,
    read_ct2_whisper,
    read_model_bin,
)
from training.manifests import read_asr_manifest, read_classification_manifest
from training.texts import Template

with (embedded_whisper_dir() / "model.bin").open("rb") as _fh:
    HEAD = _fh.read(3000)  # the header and the first variables of a real model


def write_wav(path: Path, seconds: float = 0.5) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(int(8000 * seconds), np.int16).tobytes())
    return path


def test_the_embedded_model_reads_as_whisper_tiny_en() -> None:
    model = read_ct2_whisper(embedded_whisper_dir())
    v = model.variables
    assert model.spec == "WhisperSpec"
    assert v["encoder/conv1/weight"].shape == (384, 80, 3)
    assert v["decoder/embeddings/weight"].shape == (51864, 384)
    assert v["decoder/projection/weight"] is v["decoder/embeddings/weight"]  # an alias
    state = hf_state_dict(model)
    q, k, val = (state[f"model.encoder.layers.0.self_attn.{n}_proj.weight"] for n in "qkv")
    fused = v["encoder/layer_0/self_attention/linear_0/weight"].astype(np.float32)
    assert np.array_equal(np.concatenate([q, k, val]), fused)
    assert "model.encoder.layers.0.self_attn.k_proj.bias" not in state
    assert not np.any(v["encoder/layer_0/self_attention/linear_0/bias"][384:768])


def test_a_damaged_model_bin_is_refused_with_its_reason(tmp_path: Path) -> None:
    good = (embedded_whisper_dir() / "model.bin").read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(good[:5000])
    with pytest.raises(Ct2FormatError, match="truncated"):
        read_model_bin(cut)
    old = tmp_path / "old.bin"
    old.write_bytes(struct.pack("<I", 2) + good[4:])
    with pytest.raises(Ct2FormatError, match="version 2"):
        read_model_bin(old)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 3000))
def test_any_bytes_parse_or_raise_the_format_error(tail: bytes, keep: int) -> None:
    head = HEAD[:keep]
    with contextlib.suppress(Ct2FormatError):
        parse_model_bin(head + tail, "fuzz")


def test_asr_manifest_bad_rows_carry_their_reason(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "m.csv").write_text(
        "path,text,split\n"
        "a.wav,hello there,train\n"
        "missing.wav,hello,train\n"
        "empty.wav,hello,train\n"
        "a.wav,,train\n"
        "a.wav,hello,validation\n"
    )
    manifest = read_asr_manifest(tmp_path / "m.csv")
    assert [(r.path.name, r.text, r.split) for r in manifest.rows] == [
        ("a.wav", "hello there", "train")
    ]
    reasons = [reason for _, reason in manifest.bad]
    assert len(reasons) == 4
    assert "does not exist" in reasons[0] and "is empty" in reasons[1]
    assert reasons[2] == "empty transcription" and "validation" in reasons[3]
    manifest.write_bad_rows(tmp_path / "bad.csv")
    assert (tmp_path / "bad.csv").read_text().count("\n") == 5


def test_a_manifest_split_column_is_the_held_out_split(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(
        "text,label,template,split\nhello,human,a,train\nhi you reached,machine,b,test\n"
        "yes,human,c,sideways\n"
    )
    report = read_classification_manifest(tmp_path / "m.csv")
    assert [r.split for r in report.rows] == ["train", "test"]
    assert "sideways" in report.bad[0][1]
    examples = [
        Example("x", None, 1, "g1", split="train"),
        Example("y", None, 0, "g2", split="test"),
    ]
    train, test = split_by_group(examples, 0.5, 1)
    assert (train, test) == ([examples[0]], [examples[1]])
    with pytest.raises(ValueError, match="both train and test"):
        split_by_group([examples[0]], 0.5, 1)


def test_word_errors_after_normalizing() -> None:
    assert normalize("Press 5, then the pound-key!") == [
        "press",
        "five",
        "then",
        "the",
        "pound",
        "key",
    ]
    assert word_errors(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert word_errors([], ["a"]) == 1


WORDS = st.lists(st.sampled_from("abcde"), max_size=8)  # short texts of a few words


def test_words_heard_in_order_are_the_longest_common_subsequence() -> None:
    said = normalize("Hello, who is this?")
    assert words_in_order(said, normalize("hello this is who")) == 2
    assert words_in_order(said, normalize("uh hello who is this please")) == 4
    assert words_in_order(said, []) == 0 and words_in_order([], said) == 0


@given(WORDS, WORDS)
def test_words_in_order_never_exceed_either_side_and_agree_with_word_errors(
    reference: list[str], hypothesis: list[str]
) -> None:
    found = words_in_order(reference, hypothesis)
    assert found == words_in_order(hypothesis, reference)
    assert 0 <= found <= min(len(reference), len(hypothesis))
    # Each word not matched costs at most one edit on its side.
    assert word_errors(reference, hypothesis) <= len(reference) + len(hypothesis) - 2 * found


@given(WORDS, WORDS)
def test_the_heard_prefix_is_the_shortest_that_holds_every_word_heard_in_order(
    reference: list[str], hypothesis: list[str]
) -> None:
    length = heard_prefix_length(reference, hypothesis)
    found = words_in_order(reference, hypothesis)
    assert words_in_order(reference[:length], hypothesis) == found
    assert length == 0 or words_in_order(reference[: length - 1], hypothesis) < found


def test_a_windows_script_goes_as_far_as_its_decoding_heard_it() -> None:
    script = "Hi, you've reached Priya. I can't come to the phone right now."
    # The decoding misheard the name and stopped inside "can't": the script's own words,
    # up to the last word heard, punctuation as written.
    assert heard_script(script, "Hi, you reached Korea. I can") == "Hi, you've reached Priya. I"
    assert heard_script("Call 555 1234 now", "call five five five") == "Call 555"
    assert heard_script("Hello?|Hello?", "Hello? Hello?") == "Hello? Hello?"
    assert heard_script("Hi there, friend", "hi there") == "Hi there"
    assert heard_script("Hi there", "Go, go, go, go.") == "", "nothing of the script heard"


def test_recordings_that_cannot_be_read_are_reported_not_fatal(tmp_path: Path) -> None:
    write_wav(tmp_path / "ok.wav", 6.0)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    (tmp_path / "manifest.csv").write_text(
        "path,label,text,condition,background_db\n"
        "ok.wav,human,Hello?,babble,4.0\n"
        "broken.wav,machine,Leave a message,,\n"
        "ok.wav,machine,,,\n"
    )
    report = read_classification_manifest(tmp_path / "manifest.csv")
    recordings = load_recordings(report, 5.0)
    assert [(r.reference, r.background, len(r.audio)) for r in recordings] == [
        ("Hello?", "talk 0-10 dB below", 5 * 16000)
    ]
    assert [reason for _, reason in report.bad][1:] == ["no path or no text"]
    assert "broken.wav" in report.bad[0][0]["path"] and report.bad[0][1]


@pytest.mark.parametrize("given", ["", "two", "0,2", "2,nan", "-1", "inf"])
def test_windows_that_are_not_seconds_are_refused_with_what_to_give(given: str) -> None:
    from training.whisper_cli import parse_windows

    with pytest.raises(ValueError, match="give seconds above 0 like 2,3,4,5"):
        parse_windows(given)
    assert parse_windows("5, 2,3,2") == [2.0, 3.0, 5.0]


def test_splits_are_reproducible_and_hold_out_both_labels() -> None:
    templates = [Template(f"h{i}", "human", "Hello?") for i in range(8)] + [
        Template(f"m{i}", "machine", "Leave a message.") for i in range(8)
    ]
    sides = split_templates(templates, 0.25, 3)
    assert sides == split_templates(templates, 0.25, 3)
    test = [t for t, s in sides.items() if s == "test"]
    assert sorted(t[0] for t in test) == ["h", "h", "m", "m"]
    assert held_out(["a", "b"], 0.9, 1, "x") in ({"a"}, {"b"})  # never all


def test_opening_phrases_end_at_a_pause_and_shrink() -> None:
    text = "Hi, you've reached Mike. I can't come to the phone right now | bye"
    assert opening_phrases(text) == ["Hi, you've reached Mike", "Hi"]
    assert opening_phrases("Hello? | Hello?") == ["Hello?"]
    assert opening_phrases("Good morning and thank you for calling the office of") == [
        "Good morning and thank"
    ]


def test_every_amd_train_option_says_what_it_is_and_its_default():
    from training.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, command in commands.items():
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help, f"amd-train {name} {action.option_strings or action.dest}"
        text = command.format_help()
        for action in command._actions:
            if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action)


def test_a_command_whose_extra_is_missing_says_which_extra_to_install(
    tmp_path, monkeypatch, capsys
):
    """What `amd-train evaluate` did in the environment scripts/serve.sh makes: a
    traceback ending in "No module named 'scipy'"."""
    from training.cli import main

    for name in ("sklearn", "scipy"):
        monkeypatch.setitem(sys.modules, name, None)  # as if never installed
    monkeypatch.delitem(sys.modules, "training.classifier", raising=False)  # imported afresh
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,human\n")
    code = main(["evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "needs the 'train' extra" in err and "pip install 'amd-bridge[train]'" in err


def test_word_error_rate_is_given_per_background_band():
    bands = by_background(
        [("none", 0, 4), ("talk 0-10 dB below", 3, 4), ("none", 1, 6), ("not given", 0, 0)]
    )
    assert bands == {
        "none": {"wer": 0.1, "clips": 2, "words": 10},
        "not given": {"wer": 0.0, "clips": 1, "words": 0},
        "talk 0-10 dB below": {"wer": 0.75, "clips": 1, "words": 4},
    }
    assert by_background([]) == {}


def test_asr_clips_carry_their_background_band(tmp_path: Path):
    for name in ("a.wav", "b.wav"):
        with wave.open(str(tmp_path / name), "wb") as fh:
            fh.setnchannels(1)
            fh.setsampwidth(2)
            fh.setframerate(8000)
            fh.writeframes(bytes(16000))
    (tmp_path / "asr.csv").write_text(
        "path,transcription,condition,background_db\n"
        "a.wav,Hello?,babble+lost,4.5\n"
        "b.wav,Hi there,,\n"
    )
    clips = load(read_asr_manifest(tmp_path / "asr.csv"), 2.0)
    assert [c.background for c in clips] == ["talk 0-10 dB below", NOT_GIVEN]
