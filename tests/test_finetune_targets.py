"""What a Whisper fine-tuning clip is trained to write (``training.finetune``)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from training.finetune import (
    Clip,
    SameLengthBatches,
    Teaching,
    cached_teacher_states,
    later,
    load_clips,
    load_windows,
    room_of,
    room_remixes,
    talk_mixtures,
    target_text,
    teacher_key,
    transcript_ids,
    with_room,
)
from training.manifests import AsrManifest, TranscribedRow, read_asr_manifest
from training.synth import write_wav


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


def quiet_clip(seed: int, text: str = "Hello?", quiet: bool = True) -> Clip:
    audio = np.random.default_rng(seed).normal(0, 0.1, 32000).astype(np.float32)
    features = np.zeros((80, 200), np.float32)
    return Clip(features, features, text, audio if quiet else None)


def test_talk_mixtures_put_another_quiet_clip_below_each_quiet_one():
    clips = [quiet_clip(0), quiet_clip(1), quiet_clip(2, quiet=False), quiet_clip(3, text="")]
    mixed = talk_mixtures(clips, 3, (0.0, 10.0), n_mels=80, seed=1)
    # Three copies of each quiet clip with words: not the noisy one, not the silent one.
    assert sorted(m.source for m in mixed) == [0, 0, 0, 1, 1, 1]
    for m in mixed:
        assert m.features.shape == (80, 200)
        assert np.isfinite(m.features).all()
    # The features are of a mixture, not of the clip alone.
    from faster_whisper.feature_extractor import FeatureExtractor

    alone = FeatureExtractor(feature_size=80)(clips[0].quiet_audio)[:, :200]
    assert not np.allclose(mixed[0].features, alone)
    again = talk_mixtures(clips, 3, (0.0, 10.0), n_mels=80, seed=1)
    assert all(np.array_equal(a.features, b.features) for a, b in zip(mixed, again, strict=True))


def test_no_talk_mixtures_without_copies_or_a_second_quiet_clip():
    assert talk_mixtures([quiet_clip(0), quiet_clip(1)], 0, (0.0, 10.0), 80, 1) == []
    assert talk_mixtures([quiet_clip(0), quiet_clip(1, quiet=False)], 2, (0.0, 10.0), 80, 1) == []


def test_a_talker_is_moved_later_within_its_trailing_silence_with_every_word_kept():
    talker = np.zeros(32000, np.float32)
    talker[800:16000] = np.random.default_rng(0).normal(0, 0.1, 15200)
    rng = random.Random(3)
    starts = []
    for _ in range(20):
        moved = later(talker, rng)
        loud = np.flatnonzero(np.abs(moved) > 0)
        assert len(loud) == 15200, "no sample of speech lost"
        assert loud[-1] < 32000 - 800, "the speech still ends inside the clip"
        starts.append(int(loud[0]))
    assert min(starts) >= 800 and max(starts) > 800 + 8000, "moved by up to its silence"
    full = np.ones(32000, np.float32)
    assert np.array_equal(later(full, rng), full), "no silence to move into"


def write_tone(path: Path, amplitude: float) -> None:
    t = np.arange(16000) / 8000
    write_wav(path, (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 8000)


def test_a_clip_with_a_clean_twin_is_taught_from_the_twin_only_when_asked(tmp_path: Path):
    write_tone(tmp_path / "a.wav", 8000)
    write_tone(tmp_path / "a_clean.wav", 2000)
    write_tone(tmp_path / "b.wav", 8000)
    (tmp_path / "asr.csv").write_text(
        "path,transcription,condition,background_db,clean_path\n"
        "a.wav,Hello?,babble,4.5,a_clean.wav\n"
        "b.wav,Hi there,none,inf,\n"
    )
    manifest = read_asr_manifest(tmp_path / "asr.csv")
    assert [r.clean_path for r in manifest.rows] == [tmp_path / "a_clean.wav", None]
    plain = load_clips(manifest, 2.0, 80)
    taught = load_clips(manifest, 2.0, 80, clean_targets=True)
    # The student always hears the clip; the teacher hears the twin where there is one.
    assert np.array_equal(plain[0].features, taught[0].features)
    assert not np.allclose(plain[0].padded, taught[0].padded)
    assert np.array_equal(plain[1].padded, taught[1].padded)
    assert [c.taught_by_twin for c in plain] == [False, False]
    assert [c.taught_by_twin for c in taught] == [True, False]
    twin = load_clips(read_asr_manifest_of(tmp_path, "a_clean.wav"), 2.0, 80)[0]
    assert np.array_equal(taught[0].padded, twin.padded)


def read_asr_manifest_of(folder: Path, name: str) -> AsrManifest:
    (folder / "one.csv").write_text(f"path,transcription\n{name},Hello?\n")
    return read_asr_manifest(folder / "one.csv")


def test_a_clean_twin_that_is_not_there_makes_a_bad_row(tmp_path: Path):
    write_tone(tmp_path / "a.wav", 8000)
    (tmp_path / "asr.csv").write_text("path,transcription,clean_path\na.wav,Hello?,gone.wav\n")
    manifest = read_asr_manifest(tmp_path / "asr.csv")
    assert not manifest.rows
    [(row, reason)] = manifest.bad
    assert row["path"] == "a.wav" and reason.startswith("clean_path:") and "gone.wav" in reason


def test_a_clip_less_its_twin_is_its_room_only_through_g711_with_no_frames_lost():
    twin = Path("a_clean.wav")
    assert room_of(TranscribedRow(Path("a.wav"), "Hi", "train", "babble", 4.0, twin, "ulaw"))
    assert room_of(TranscribedRow(Path("a.wav"), "Hi", "train", "noise", 20.0, twin, "alaw"))
    assert not room_of(TranscribedRow(Path("a.wav"), "Hi", "train", "babble", 4.0, twin, "gsm"))
    assert not room_of(TranscribedRow(Path("a.wav"), "Hi", "train", "babble", 4.0, twin, "amr-nb"))
    lost = TranscribedRow(Path("a.wav"), "Hi", "train", "babble+lost", 4.0, twin, "ulaw", 0.02)
    assert not room_of(lost)
    assert not room_of(TranscribedRow(Path("a.wav"), "Hi", "train", "none", None, None, "ulaw"))


def write_samples(path: Path, samples: np.ndarray) -> None:
    write_wav(path, np.round(samples * 32767).astype(np.int16), 16000)


def test_room_remixes_put_another_clips_room_behind_a_known_talker_at_its_own_depth(
    tmp_path: Path,
):
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    talker_a = (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    room_a = (0.02 * rng.normal(size=32000)).astype(np.float32)  # 20 dB below its talker
    write_samples(tmp_path / "a.wav", talker_a + room_a)
    write_samples(tmp_path / "a_clean.wav", talker_a)
    write_samples(tmp_path / "b.wav", (0.05 * np.sin(2 * np.pi * 500 * t)).astype(np.float32))
    write_samples(tmp_path / "c.wav", talker_a + room_a)
    write_samples(tmp_path / "c_clean.wav", talker_a)
    (tmp_path / "asr.csv").write_text(
        "path,transcription,condition,background_db,clean_path,codec,lost_share\n"
        "a.wav,Hello?,noise,20,a_clean.wav,ulaw,0.000\n"
        "b.wav,Hi there,none,inf,,alaw,0.000\n"
        "c.wav,Yes?,noise,20,c_clean.wav,gsm,0.000\n"
    )
    manifest = read_asr_manifest(tmp_path / "asr.csv")
    assert [(r.codec, r.lost_share) for r in manifest.rows] == [("ulaw", 0.0)] * 1 + [
        ("alaw", 0.0),
        ("gsm", 0.0),
    ]
    clips = load_clips(manifest, 2.0, 80, clean_targets=True)
    # a's room is the noise (to the file's 16-bit steps); the GSM clip c keeps none.
    assert clips[0].room_audio is not None
    assert np.abs(clips[0].room_audio - room_a).max() < 2e-4
    assert clips[1].room_audio is None and clips[2].room_audio is None
    remixed = room_remixes(clips, 2, n_mels=80, seed=1)
    # Every clip with its talker known alone gets two: a and c by their twins, b as is.
    assert sorted(m.source for m in remixed) == [0, 0, 1, 1, 2, 2]
    from faster_whisper.feature_extractor import FeatureExtractor

    alone = FeatureExtractor(feature_size=80)(clips[1].talker_audio)[:, :200]
    b_mixes = [m.features for m in remixed if m.source == 1]
    assert all(not np.allclose(f, alone) for f in b_mixes), "b has a room behind it now"
    again = room_remixes(clips, 2, n_mels=80, seed=1)
    assert all(np.array_equal(a.features, b.features) for a, b in zip(remixed, again, strict=True))
    assert room_remixes(clips, 0, 80, 1) == []
    assert room_remixes([clips[1]], 2, 80, 1) == [], "no room to put behind"


def test_a_room_goes_behind_a_talker_shifted_and_scaled_and_never_over_full_scale():
    talker = np.zeros(100, np.float32)
    talker[10:20] = 0.5
    room = np.arange(100, dtype=np.float32) / 1000
    mixed = with_room(talker, room, 0.5, 3)
    assert np.allclose(mixed - talker, np.roll(room, 3) * 0.5)
    short = with_room(talker, room[:40], 1.0, 0)
    assert np.allclose(short[40:80] - talker[40:80], room[:40]), "a short room repeats"
    loud = with_room(np.full(100, 0.9, np.float32), np.full(100, 0.6, np.float32), 1.0, 0)
    assert np.allclose(loud, 1.0), "brought down to full scale"


def test_teacher_states_are_kept_and_reused_only_for_the_same_weights_and_clips(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"weights one")
    clips = [
        Clip(np.zeros((80, 200), np.float32), np.full((80, 3000), v, np.float32), "hi")
        for v in (0.1, 0.2)
    ]
    key = teacher_key(checkpoint, clips)
    computed: list[int] = []

    def compute() -> Teaching:
        computed.append(1)
        states = [torch.full((100, 4), float(len(computed)), dtype=torch.float16)] * 2
        return Teaching(states, [None, f"run {len(computed)}"])

    cache = tmp_path / "cache" / "teacher.pt"
    first = cached_teacher_states(cache, key, compute)
    again = cached_teacher_states(cache, key, compute)
    assert len(computed) == 1 and cache.is_file(), "the second run read the file"
    assert all(torch.equal(a, b) for a, b in zip(first.states, again.states, strict=True))
    assert again.texts == [None, "run 1"], "the decoded texts are kept too"
    assert not list(cache.parent.glob("*.partial"))

    clips[1].padded[0, 0] = 0.5  # another teacher input: another key, computed again
    assert teacher_key(checkpoint, clips) != key
    shorter = [Clip(np.zeros((80, 100), np.float32), clips[0].padded, "hi")]
    assert teacher_key(checkpoint, clips[:1]) != teacher_key(checkpoint, shorter), "frames kept"
    decoded = [replace(clips[0], text_from_teacher=True)]
    assert teacher_key(checkpoint, clips[:1]) != teacher_key(checkpoint, decoded), "texts asked"
    changed = teacher_key(checkpoint, clips)
    (checkpoint / "model.safetensors").write_bytes(b"weights two")
    assert teacher_key(checkpoint, clips) != changed, "other weights"
    fresh = cached_teacher_states(cache, teacher_key(checkpoint, clips), compute)
    assert len(computed) == 2 and float(fresh.states[0][0, 0]) == 2.0

    cache.write_bytes(b"not a torch file")  # a broken file is computed again, not fatal
    cached_teacher_states(cache, key, compute)
    assert len(computed) == 3
    assert cached_teacher_states(None, "", compute).states and len(computed) == 4, "no cache"


def test_batches_hold_clips_of_one_length_and_every_clip_once_a_pass() -> None:
    lengths = [200] * 10 + [300] * 7 + [500] * 3
    batches = SameLengthBatches(lengths, 4, seed=1)
    passes = [list(batches), list(batches)]
    for batch_list in passes:
        assert len(batch_list) == len(batches) == 3 + 2 + 1
        assert sorted(i for b in batch_list for i in b) == list(range(20))
        assert all(len({lengths[i] for i in b}) == 1 and 0 < len(b) <= 4 for b in batch_list)
    assert passes[0] != passes[1], "shuffled anew at each pass"


def write_samples_16(path: Path, samples: np.ndarray) -> None:
    write_wav(path, samples.astype(np.int16), 8000)


def test_a_window_is_the_recordings_start_at_a_drawn_length_taught_by_its_twin(
    tmp_path: Path,
) -> None:
    t = np.arange(8000 * 6) / 8000
    write_samples_16(tmp_path / "a.wav", 8000 * np.sin(2 * np.pi * 440 * t))
    write_samples_16(tmp_path / "a_clean.wav", 2000 * np.sin(2 * np.pi * 440 * t))
    write_samples_16(tmp_path / "b.wav", 8000 * np.sin(2 * np.pi * 300 * t[:8000]))  # 1 s
    (tmp_path / "manifest.csv").write_text(
        "path,text,condition,background_db,clean_path\n"
        "a.wav,Hello?,babble,4.5,a_clean.wav\n"
        "b.wav,Hi there,none,inf,\n"
    )
    manifest = read_asr_manifest(tmp_path / "manifest.csv")
    windows = load_windows(manifest, (2.0, 3.0, 5.0), 80, seed=1)
    assert len(windows) == 2 and all(w.text_from_teacher and w.text == "" for w in windows)
    assert {w.features.shape[1] for w in windows} <= {200, 300, 500}
    assert [w.taught_by_twin for w in windows] == [True, False]
    assert all(w.padded.shape == (80, 3000) for w in windows)
    # The teacher hears the twin's window padded to 30 s: quieter than the recording's.
    a, b = windows
    seconds = a.features.shape[1] // 100
    assert a.padded[:, : seconds * 100].mean() < a.features.mean()
    # A recording shorter than its window is padded with silence.
    assert np.ptp(b.features[:, 110:]) < 1e-3 < np.ptp(b.features[:, :90]), "silence after 1 s"
    again = load_windows(manifest, (2.0, 3.0, 5.0), 80, seed=1)
    assert [w.features.shape for w in again] == [w.features.shape for w in windows]
    drawn = {
        load_windows(manifest, (2.0, 3.0, 5.0), 80, seed=s)[0].features.shape[1] for s in range(12)
    }
    assert len(drawn) > 1, "the length is drawn per recording and seed"
