"""amd-train end to end on small data: manifests with bad rows, synthesis, training,
and the result loaded by the runtime."""

import csv
import random

import numpy as np
import pytest

from bridge.engine.asr import AsrOptions
from bridge.engine.classifier import AmdClassifier
from bridge.engine.detector import Detector
from bridge.engine.models import embedded_whisper_dir
from training.cli import main as amd_train
from training.manifests import read_classification_manifest
from training.texts import fill, load_templates


def write_csv(path, header, rows):
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def test_project_templates_are_varied_and_balanced():
    templates = load_templates()
    labels = [t.label for t in templates]
    assert labels.count("machine") >= 100 and labels.count("human") >= 100
    assert len({t.template_id for t in templates}) == len(templates)
    texts = {t.text.lower() for t in templates}
    assert "hello, he's not available right now, can i take a message?" in texts


def test_slots_are_filled_reproducibly():
    text = "Hi {name} and {name2}, call {number}."
    a, b = fill(text, random.Random(3)), fill(text, random.Random(3))
    assert a == b and "{" not in a
    with pytest.raises(ValueError, match="unknown slot"):
        fill("{nickname}", random.Random(0))


def test_text_manifest_with_bad_rows(tmp_path, capsys):
    rows = [(t.text, t.label, t.template_id) for t in load_templates()]
    rows += [("", "human", "x1"), ("hello", "robot", "x2")]
    manifest = tmp_path / "texts.csv"
    write_csv(manifest, ["text", "label", "template"], rows)
    out = tmp_path / "model.npz"
    assert amd_train(["classifier", "--manifest", str(manifest), "--out", str(out)]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    with (tmp_path / "model.bad-rows.csv").open() as fh:
        bad = list(csv.DictReader(fh))
    assert [b["reason"] for b in bad] == ["empty text", "label 'robot' is not human or machine"]
    clf = AmdClassifier.load(out)
    assert not clf.model.uses_timing
    held_out = clf.model.meta["training"]["held_out"]
    assert held_out["accuracy"] > 0.8  # templates unseen in training
    assert clf.proba_human("please leave a message after the tone", None) < 0.5
    # An existing model is kept unless --force.
    assert amd_train(["classifier", "--manifest", str(manifest), "--out", str(out)]) == 2


def test_one_run_saves_the_refit_model_and_the_training_side_model(tmp_path):
    rows = [(t.text, t.label, t.template_id) for t in load_templates()]
    manifest = tmp_path / "texts.csv"
    write_csv(manifest, ["text", "label", "template"], rows)
    out, held = tmp_path / "all.npz", tmp_path / "heldout.npz"
    args = ["classifier", "--manifest", str(manifest), "--out", str(out)]
    assert amd_train([*args, "--held-out-model", str(held)]) == 0
    refit, on_train = AmdClassifier.load(out), AmdClassifier.load(held)
    assert refit.model.meta["training"]["refit_on_all"] is True
    assert on_train.model.meta["training"]["refit_on_all"] is False
    assert "fit on the training side only" in (tmp_path / "heldout.md").read_text()
    # The training-side model is what --no-refit saves: it never saw the held-out texts.
    solo = tmp_path / "solo.npz"
    assert (
        amd_train(["classifier", "--manifest", str(manifest), "--out", str(solo), "--no-refit"])
        == 0
    )
    assert AmdClassifier.load(solo).model.vocab == on_train.model.vocab != refit.model.vocab
    # Neither file is overwritten without --force.
    assert amd_train([*args, "--held-out-model", str(held), "--force"]) == 0
    assert amd_train([*args[:-1], str(tmp_path / "new.npz"), "--held-out-model", str(held)]) == 2


def test_manifest_without_the_needed_columns_is_refused(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    write_csv(manifest, ["file", "kind"], [("a.wav", "human")])
    assert amd_train(["classifier", "--manifest", str(manifest), "--out", str(tmp_path / "o")]) == 2
    assert "needs a 'label' column" in capsys.readouterr().err


def test_synthesised_recordings_train_a_timing_model_the_runtime_loads(tmp_path):
    corpus = tmp_path / "corpus"
    assert amd_train(["synth", "--out", str(corpus), "--limit", "3", "--variants", "2"]) == 0
    manifest = corpus / "manifest.csv"
    report = read_classification_manifest(manifest)
    assert len(report.rows) == 12 and not report.bad
    (corpus / "audio" / "broken.wav").write_bytes(b"not a wav")
    with manifest.open("a", newline="") as fh:
        csv.writer(fh).writerows(
            [("audio/missing.wav", "human", "", "z1"), ("audio/broken.wav", "machine", "", "z2")]
        )
    out = tmp_path / "clf.npz"
    args = ["classifier", "--manifest", str(manifest), "--out", str(out), "--test-size", "0.34"]
    assert (
        amd_train([*args, "--windows", "2,4", "--calibrate", "--card", str(tmp_path / "c.md")]) == 0
    )
    calibration = AmdClassifier.load(out).model.meta["training"]["calibration"]
    assert calibration["logit_scale"] > 0 and calibration["before"]["calls"] >= 1
    assert AmdClassifier.load(out).model.logit_scale == calibration["logit_scale"]
    # four held-out calls are too few to give each window a scale of its own
    assert AmdClassifier.load(out).model.window_scales is None
    assert "Calibrated on the held-out side" in (tmp_path / "c.md").read_text()
    with (tmp_path / "clf.bad-rows.csv").open() as fh:
        reasons = [row["reason"] for row in csv.DictReader(fh)]
    assert len(reasons) == 2
    assert "does not exist" in reasons[0] and "not an audio file" in reasons[1]
    detector = Detector(embedded_whisper_dir(), out, AsrOptions())
    assert detector.classifier.model.uses_timing
    [result] = detector.analyze_batch([np.zeros(32000, np.float32)])
    assert 0.0 <= result.proba_human <= 1.0


def test_unusable_data_and_arguments_end_with_a_message(tmp_path, capsys):
    manifest = tmp_path / "one-class.csv"
    write_csv(manifest, ["text", "label"], [("hello", "human"), ("hi there", "human")] * 4)
    out = tmp_path / "o.npz"
    assert amd_train(["classifier", "--manifest", str(manifest), "--out", str(out)]) == 2
    assert "both human and machine" in capsys.readouterr().err
    args = ["classifier", "--manifest", str(manifest), "--out", str(out), "--windows", "2,x"]
    assert amd_train(args) == 2
    assert "--windows" in capsys.readouterr().err
    for nonsense in ("0,2", "inf", ","):  # as asr-eval refuses them
        assert amd_train([*args[:-1], nonsense]) == 2
        assert f"--windows {nonsense!r}" in capsys.readouterr().err
    assert not out.exists()


def test_finetune_window_options_without_recordings_or_seconds_are_refused(tmp_path, capsys):
    base = ["finetune", "--checkpoint", str(tmp_path / "ck"), "--manifest", str(tmp_path / "a.csv")]
    base += ["--out", str(tmp_path / "out")]
    assert amd_train([*base, "--window-lengths", "2,3"]) == 2
    assert "need --recordings" in capsys.readouterr().err
    assert amd_train([*base, "--max-recordings", "4"]) == 2
    assert "need --recordings" in capsys.readouterr().err
    with_recordings = [*base, "--recordings", str(tmp_path / "m.csv")]
    assert amd_train([*with_recordings, "--window-lengths", "2,zero"]) == 2
    assert "--window-lengths '2,zero'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "refused before anything was read or written"


def test_bad_rows_are_written_even_when_too_few_good_ones_remain(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    write_csv(manifest, ["text", "label"], [("hello", "human"), ("", "machine")] * 3)
    out = tmp_path / "o.npz"
    assert amd_train(["classifier", "--manifest", str(manifest), "--out", str(out)]) == 2
    assert "both human and machine" in capsys.readouterr().err
    with (tmp_path / "o.bad-rows.csv").open() as fh:
        assert [row["reason"] for row in csv.DictReader(fh)] == ["empty text"] * 3
