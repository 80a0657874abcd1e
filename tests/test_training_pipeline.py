"""The training package end to end on a small generated corpus, on CPU: corpus,
Whisper import from the embedded CTranslate2 model, a few LoRA steps of short-context
fine-tuning, export to CTranslate2 (int8), a classifier trained on what that model
hears, and both loaded by the service's own detector."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from bridge.settings import Settings
from training.composed import load_grammar
from training.conditions import NONE, background_of
from training.finetune import room_of, target_text
from training.manifests import read_asr_manifest
from training.synth import RECORDING_MIN_S, write_wav

AMD_TRAIN = str(Path(sys.executable).with_name("amd-train"))
AMD_BRIDGE = str(Path(sys.executable).with_name("amd-bridge"))


def amd_train(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [AMD_TRAIN, *args], capture_output=True, text=True, timeout=900, check=False
    )
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_music(folder: Path) -> Path:
    """Two tracks of chords (the corpus's held-out side gets one of them)."""
    folder.mkdir()
    t = np.arange(8000 * 8) / 8000
    for n, root in enumerate((220.0, 196.0)):
        chord = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5))
        beat = 0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0)
        write_wav(folder / f"track{n}.wav", (chord * beat / 3 * 12000).astype(np.int16), 8000)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, allison_prompts: Path) -> Path:
    out = tmp_path_factory.mktemp("training") / "corpus"
    music = write_music(out.parent / "music")
    amd_train(
        "corpus",
        "--out",
        str(out),
        "--limit",
        "3",
        "--variants",
        "2",
        "--composed",
        "24",
        "--asterisk-sounds",
        str(allison_prompts),
        "--music",
        str(music),
    )
    return out


@pytest.fixture(scope="module")
def imported(corpus: Path) -> Path:
    checkpoint = corpus.parent / "hf-tiny"
    amd_train("import-whisper", "--out", str(checkpoint))
    return checkpoint


def test_the_corpus_keeps_test_voices_and_templates_apart_from_training(corpus: Path) -> None:
    recordings = rows(corpus / "manifest.csv")
    header = ["path", "label", "text", "template", "text_class", "voice", "voice_shift", "split"]
    # clean_path (a recording's clean twin) comes where the first row with one has it
    assert [c for c in recordings[0] if c != "clean_path"] == header + [
        "codec",
        "level_db",
        "condition",
        "background_db",
        "lost_share",
    ]
    assert "clean_path" in recordings[0]
    assert {r["codec"] for r in recordings} == {"ulaw", "alaw", "gsm", "amr-nb"}
    conditions = {r["condition"].removesuffix("+lost") for r in recordings}
    assert conditions == {"none", "noise", "babble", "music"}
    spoken = [r for r in recordings if r["voice"] != "allison"]
    shifts = {float(r["voice_shift"]) for r in spoken}
    assert 1.0 in shifts and all(0.88 <= s <= 1.14 for s in shifts) and len(shifts) > 10
    sides = {s: [r for r in recordings if r["split"] == s] for s in ("train", "test")}
    for side in sides.values():
        assert {r["label"] for r in side} == {"human", "machine"}
    assert not {r["voice"] for r in sides["train"]} & {r["voice"] for r in sides["test"]}
    assert not {r["template"] for r in sides["train"]} & {r["template"] for r in sides["test"]}
    assert not {r["text"] for r in sides["train"]} & {r["text"] for r in sides["test"]}
    composed = [r for r in recordings if "-" in r["template"] and r["voice"] != "allison"]
    for side in ("train", "test"):  # --composed 24: one of each class on each side
        assert {r["text_class"] for r in composed if r["split"] == side} == set(
            load_grammar().classes
        )
    assert all(r["text_class"] for r in recordings)
    families = {r["voice"].split("+")[0] for r in recordings}
    assert "allison" in families and any(v.startswith("joe") for v in families)
    assert any(v.startswith("en-") for v in families)  # espeak-ng
    asterisk = [r for r in recordings if r["voice"] == "allison"]
    assert {r["label"] for r in asterisk} == {"machine"}
    assert any("Please leave your message after the tone" in r["text"] for r in asterisk)
    # every recording outlasts the service's last ask: what follows the callee's words
    # is heard as a line carries it, not cut by the end of the file
    assert Settings().max_window_s < RECORDING_MIN_S
    for r in recordings:
        with wave.open(str(corpus / r["path"])) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert w.getnframes() >= RECORDING_MIN_S * 8000


def test_a_music_folder_that_is_not_there_is_refused_before_anything_is_spoken(
    tmp_path: Path,
) -> None:
    out = tmp_path / "corpus"
    proc = amd_train(
        "corpus", "--out", str(out), "--limit", "1", "--music", str(tmp_path / "moh"), ok=False
    )
    assert proc.returncode == 2
    assert "no music folder" in proc.stderr and "asterisk-moh-opsound-wav" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(out.glob("audio/*.wav"))


def test_asr_clips_hold_their_whole_text_within_two_seconds(corpus: Path) -> None:
    clips = rows(corpus / "asr.csv")
    assert {c["split"] for c in clips} == {"train", "test"}
    assert any(c["voice"] == "allison" for c in clips)
    for c in clips:
        assert c["transcription"]
        with wave.open(str(corpus / c["path"])) as w:
            assert w.getnframes() <= 2.0 * w.getframerate()


def test_spoken_asr_clips_are_heard_under_the_recordings_conditions(corpus: Path) -> None:
    """Whisper is fine-tuned on these clips: they carry background talk, music and noise
    as the recordings do, so that it learns to transcribe the talker and not the room."""
    spoken = [c for c in rows(corpus / "asr.csv") if c["voice"] != "allison"]
    kinds = {c["condition"].removesuffix("+lost") for c in spoken}
    assert kinds == {"none", "noise", "babble", "music"}
    assert {c["codec"] for c in spoken} >= {"ulaw", "alaw"}
    quiet: dict[str, list[float]] = {"none": [], "behind": []}
    for c in spoken:
        if c["condition"] not in ("none", "babble", "music"):
            continue  # lost frames and band noise aside
        with wave.open(str(corpus / c["path"])) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
        frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
        rms = np.sqrt(np.mean(frames**2, axis=1))
        share = float(np.mean(rms < 0.01 * rms.max()))  # 20 ms frames 40 dB below the peak
        quiet["none" if c["condition"] == "none" else "behind"].append(share)
    # A clean clip is quiet between words; talk or music behind the talker fills that.
    assert quiet["none"] and quiet["behind"]
    assert np.mean(quiet["behind"]) < 0.5 * np.mean(quiet["none"])


def read_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)


@pytest.mark.parametrize("manifest", ["asr.csv", "manifest.csv"])
def test_clips_and_recordings_under_a_background_have_the_talker_alone_beside_them(
    corpus: Path, manifest: str
) -> None:
    """The clean twin is the same talker through the same channel, at the level it has
    in the clip (or whole recording), with nothing behind it: a target for hearing the
    talker alone."""
    spoken = [c for c in rows(corpus / manifest) if c.get("condition")]
    behind = [c for c in spoken if background_of(c["condition"]) != NONE]
    assert behind and all(c["clean_path"] for c in behind)
    assert not any(c["clean_path"] for c in spoken if background_of(c["condition"]) == NONE)
    gains, quiet = [], []
    for c in behind:
        clip, twin = read_pcm(corpus / c["path"]), read_pcm(corpus / c["clean_path"])
        assert len(twin) == len(clip)
        frames = twin[: len(twin) // 160 * 160].reshape(-1, 160)
        rms = np.sqrt(np.mean(frames**2, axis=1))
        quiet.append(float(np.mean(rms < 0.01 * rms.max())))
        if c["codec"] in ("ulaw", "alaw") and c["condition"] in ("babble", "music"):
            gains.append(float(clip @ twin / (twin @ twin)))  # least-squares scale
    # The twin has pauses between words (the clips with talk or music behind have few),
    # and the clip is the twin at the same level plus the room.
    assert np.mean(quiet) > 0.1
    assert gains and all(0.8 < g < 1.25 for g in gains), gains


def test_a_corpus_is_reproducible_from_its_seed(tmp_path: Path) -> None:
    made = []
    for name in ("a", "b"):
        out = tmp_path / name
        amd_train(
            "corpus", "--out", str(out), "--limit", "1", "--variants", "2", "--composed", "12",
            "--seed", "5",
        )  # fmt: skip
        made.append(out)
    first, second = (rows(m / "manifest.csv") for m in made)
    assert first == second
    assert sum(r["voice"] != "allison" and "-" in r["template"] for r in first) >= 12
    for r in first:
        assert (made[0] / r["path"]).read_bytes() == (made[1] / r["path"]).read_bytes()
    assert amd_train("corpus", "--out", str(made[0]), "--limit", "1", ok=False).returncode == 2


def test_more_phrases_for_a_pool_the_grammar_lacks_stop_the_corpus(tmp_path: Path) -> None:
    more = tmp_path / "more.toml"
    more.write_text('[pools]\nreached = ["this is {name}\'s line."]\nnope = ["x.", "y."]\n')
    out = tmp_path / "corpus"
    proc = amd_train(
        "corpus", "--out", str(out), "--limit", "1", "--more-phrases", str(more), ok=False
    )
    assert proc.returncode == 2 and "no pool 'nope'" in proc.stderr
    assert not (out / "manifest.csv").exists()


def test_the_imported_model_exports_back_to_the_same_weights_and_tokens(
    imported: Path, tmp_path: Path, speech_audio
) -> None:
    from bridge.engine.asr import AsrOptions, ShortContextWhisper
    from bridge.engine.models import embedded_whisper_dir
    from training.ct2_whisper import read_model_bin

    exported = tmp_path / "round-trip"
    amd_train(
        "export", "--checkpoint", str(imported), "--out", str(exported), "--quantization", "float16"
    )
    _, _, original = read_model_bin(embedded_whisper_dir() / "model.bin")
    _, _, back = read_model_bin(exported / "model.bin")
    assert set(original) <= set(back)
    for name, value in original.items():
        assert back[name].dtype == value.dtype and np.array_equal(back[name], value), name
    clip = speech_audio("Hi, you've reached the Millers, please leave a message.")[: 3 * 16000]
    options = AsrOptions(compute_type="float32")
    tokens = []
    for model in (embedded_whisper_dir(), exported):
        asr = ShortContextWhisper(model, options)
        feats = asr._features(clip, len(clip))[None]
        import ctranslate2

        result = asr.model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)), [asr.prompt]
        )
        tokens.append(result[0].sequences_ids[0])
    assert tokens[0] == tokens[1] and len(tokens[0]) > 5


def test_export_refuses_to_overwrite_without_force(imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.bin").write_bytes(b"an older model")
    proc = amd_train("export", "--checkpoint", str(imported), "--out", str(out), ok=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (out / "model.bin").read_bytes() == b"an older model"
    bad = amd_train(
        "export",
        "--checkpoint",
        str(imported),
        "--out",
        str(out),
        "--quantization",
        "int3",
        "--force",
        ok=False,
    )
    assert bad.returncode == 2 and "int8" in bad.stderr


def test_asr_eval_hears_whole_recordings_at_each_window(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "heard.json"
    proc = amd_train(
        "asr-eval",
        "--recordings",
        str(corpus / "manifest.csv"),
        "--model",
        "embedded",
        "--decoding",
        "short",
        "--windows",
        "4,2",
        "--out",
        str(out),
    )
    held_out = [r for r in rows(corpus / "manifest.csv") if r["split"] == "test"]
    result = json.loads(out.read_text())
    assert result["recordings"] == len(held_out) > 0 and result["bad_rows"] == 0
    windows = result["models"]["embedded"]["short"]
    assert list(windows) == ["2", "4"], "in order of time, whatever order they were given"
    for w in windows.values():
        assert w["recordings"] == len(held_out)
        assert sum(b["recordings"] for b in w["by_background"].values()) == len(held_out)
        assert 0 <= w["share_of_text_heard"] <= 1 and w["not_said_per_recording"] >= 0
    assert windows["4"]["heard_per_recording"] > 1, "tiny.en hears TTS speech in 4 s"
    assert all(band in proc.stdout for band in windows["2"]["by_background"])
    bad = amd_train(
        "asr-eval",
        "--recordings",
        str(corpus / "manifest.csv"),
        "--model",
        "embedded",
        "--windows",
        "two",
        ok=False,
    )
    assert bad.returncode == 2 and "--windows 'two'" in bad.stderr
    both = amd_train(
        "asr-eval", "--recordings", "a.csv", "--manifest", "b.csv", "--model", "embedded", ok=False
    )
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_fine_tune_export_train_and_load_in_the_service(
    corpus: Path, imported: Path, tmp_path: Path
) -> None:
    tuned = tmp_path / "tuned"
    amd_train(
        "finetune",
        "--checkpoint",
        str(imported),
        "--manifest",
        str(corpus / "asr.csv"),
        "--out",
        str(tuned),
        "--max-clips",
        "12",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--lora",
        "--ce-weight",
        "0.5",
        "--silent-under-talk",
        "10",
        "--talk-mixtures",
        "1",
        "--clean-targets",
        "--room-remixes",
        "1",
        "--teacher-cache",
        str(tmp_path / "teacher.pt"),
        "--recordings",
        str(corpus / "manifest.csv"),
        "--max-recordings",
        "6",
        "--window-lengths",
        "3,2",
    )
    assert (tmp_path / "teacher.pt").is_file(), "the teacher's states kept for the next run"
    summary = json.loads((tuned / "finetune.json").read_text())
    assert summary["clips"] == 12 and summary["steps"] == 3 and summary["last_loss"] > 0
    # Whole-recording windows: six training-side recordings, each cut at 2 or 3 s,
    # taught by the clean twin where something is behind the callee.
    recorded = [r for r in read_asr_manifest(corpus / "manifest.csv").rows if r.split == "train"]
    assert summary["windows"] == 6 and set(summary["windows_by_length"]) <= {"2", "3"}
    assert sum(summary["windows_by_length"].values()) == 6
    assert summary["windows_taught_by_twin"] == sum(r.clean_path is not None for r in recorded[:6])
    assert summary["windows_without_words"] < 6, "the teacher hears words in most windows"
    first = [r for r in read_asr_manifest(corpus / "asr.csv").rows if r.split == "train"][:12]
    assert summary["silent_clips"] == sum(target_text(r, 10.0) == "" for r in first)
    quiet = [r for r in first if background_of(r.condition) == NONE and target_text(r, 10.0)]
    assert len(quiet) > 1 and summary["talk_mixtures"] == len(quiet), "one copy of each"
    twins = [r for r in first if r.clean_path is not None]
    assert twins and summary["clean_targets"] == len(twins)
    talkers = [r for r in quiet + twins if target_text(r, 10.0)]
    assert any(room_of(r) for r in first), "the small corpus has a G.711 room to remix"
    assert summary["room_remixes"] == len(talkers), "one copy of each known talker"
    exported = tmp_path / "tuned-ct2"
    amd_train(
        "export", "--checkpoint", str(tuned), "--out", str(exported), "--quantization", "int8"
    )
    assert {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"} <= {
        p.name for p in exported.iterdir()
    }
    classifier = tmp_path / "clf.npz"
    amd_train(
        "classifier",
        "--manifest",
        str(corpus / "manifest.csv"),
        "--out",
        str(classifier),
        "--whisper-model",
        str(exported),
        "--windows",
        "2,4",
    )
    recordings = rows(corpus / "manifest.csv")
    env = {**os.environ, "AMD_WHISPER_MODEL": str(exported), "AMD_CLASSIFIER": str(classifier)}
    proc = subprocess.run(
        [AMD_BRIDGE, "detect", *(str(corpus / r["path"]) for r in recordings[:4])],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    decisions = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(decisions) == 4
    assert all(d["status"] in ("HUMAN", "MACHINE", "NOTSURE") for d in decisions)
    assert any(d["transcript"] for d in decisions)
