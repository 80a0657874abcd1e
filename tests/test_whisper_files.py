"""The short-context Whisper ships as an overlay on the embedded tiny.en: the model file
format it is put together with, and what a wrong overlay or base gets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bridge.engine.ct2_file import parse_ct2_file, serialize_ct2_file
from bridge.engine.models import (
    EMBEDDED_SHORT,
    check_whisper_dir,
    embedded_whisper_dir,
    resolve_whisper_model,
)
from bridge.engine.whisper_files import OVERLAY_FILE, is_overlay, overlay_files, write_overlay
from bridge.errors import ModelError

BASE = embedded_whisper_dir()
BASE_BYTES = (BASE / "model.bin").read_bytes()


def model_dir_with(tmp: Path, name: str, change: str) -> Path:
    """A copy of the embedded model with one variable changed (``change``: its name)."""
    model = parse_ct2_file(BASE_BYTES, "base")
    value = model.variables[change]
    model.variables[change] = (value.astype(np.float32) + 0.25).astype(value.dtype)
    out = tmp / name
    out.mkdir()
    for f in BASE.iterdir():
        if f.name != "model.bin":
            shutil.copy(f, out / f.name)
    (out / "model.bin").write_bytes(serialize_ct2_file(model))
    return out


def test_reading_and_writing_a_model_file_gives_back_its_bytes() -> None:
    model = parse_ct2_file(BASE_BYTES, "base")
    assert model.spec == "WhisperSpec"
    assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert serialize_ct2_file(model) == BASE_BYTES


def test_an_overlay_holds_the_changed_encoder_and_rebuilds_the_tuned_model(
    tmp_path: Path,
) -> None:
    tuned = model_dir_with(tmp_path, "tuned", "encoder/layer_1/ffn/linear_0/weight")
    names = write_overlay(BASE, tuned, tmp_path / "overlay")
    assert names == ["encoder/layer_1/ffn/linear_0/weight"]
    assert is_overlay(tmp_path / "overlay") and not is_overlay(tuned)
    check_whisper_dir(tmp_path / "overlay")  # no model.bin of its own, and that is fine
    files = overlay_files(tmp_path / "overlay", BASE)
    assert files["model.bin"] == (tuned / "model.bin").read_bytes()
    assert files["tokenizer.json"] == (BASE / "tokenizer.json").read_bytes()


def test_a_model_changed_outside_the_encoder_is_no_overlay(tmp_path: Path) -> None:
    tuned = model_dir_with(tmp_path, "tuned", "decoder/layer_0/ffn/linear_0/weight")
    with pytest.raises(ModelError, match="outside the encoder"):
        write_overlay(BASE, tuned, tmp_path / "overlay")


def test_an_int8_export_is_refused_with_what_to_do(tmp_path: Path) -> None:
    model = parse_ct2_file(BASE_BYTES, "base")
    name = "encoder/conv1/weight"
    model.variables[name] = model.variables[name].astype(np.int8)
    model.variables[name + "_scale"] = np.ones(384, np.float32)
    tuned = tmp_path / "int8"
    tuned.mkdir()
    (tuned / "model.bin").write_bytes(serialize_ct2_file(model))
    with pytest.raises(ModelError, match="float16"):
        write_overlay(BASE, tuned, tmp_path / "overlay")


def test_an_overlay_for_another_base_model_is_refused(tmp_path: Path) -> None:
    tuned = model_dir_with(tmp_path, "tuned", "encoder/conv2/bias")
    write_overlay(BASE, tuned, tmp_path / "overlay")
    with pytest.raises(ModelError, match="AMD_WHISPER_MODEL=embedded"):
        overlay_files(tmp_path / "overlay", tuned)  # the tuned model is not its base


def test_a_damaged_overlay_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / OVERLAY_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelError, match="unreadable"):
        overlay_files(bad, BASE)
    np.savez(bad / OVERLAY_FILE, format=np.array("something else"))
    with pytest.raises(ModelError, match="format"):
        overlay_files(bad, BASE)


def test_an_overlay_variable_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    from bridge.engine.whisper_files import OVERLAY_FORMAT, fingerprint

    odd = tmp_path / "odd"
    odd.mkdir()
    np.savez(
        odd / OVERLAY_FILE,
        format=np.array(OVERLAY_FORMAT),
        base_sha256=np.array(fingerprint(BASE_BYTES)),
        **{"encoder/conv1/bias": np.zeros(7, np.float16)},
    )
    with pytest.raises(ModelError, match="does not fit"):
        overlay_files(odd, BASE)


def test_the_shipped_overlay_fits_the_installed_tiny_en() -> None:
    shipped = resolve_whisper_model(EMBEDDED_SHORT)
    assert is_overlay(shipped)
    model = parse_ct2_file(overlay_files(shipped, BASE)["model.bin"], "shipped")
    base = parse_ct2_file(BASE_BYTES, "base")
    changed = [n for n, v in base.variables.items() if not np.array_equal(v, model.variables[n])]
    assert changed and all(n.startswith("encoder/") for n in changed)


def test_the_shipped_overlay_can_be_imported_for_further_fine_tuning() -> None:
    from training.ct2_whisper import read_ct2_whisper

    shipped = resolve_whisper_model(EMBEDDED_SHORT)
    with np.load(shipped / OVERLAY_FILE) as overlay:
        conv1 = overlay["encoder/conv1/weight"]
    model = read_ct2_whisper(shipped)
    assert np.array_equal(model.variables["encoder/conv1/weight"], conv1)
    assert (
        model.variables["decoder/projection/weight"] is model.variables["decoder/embeddings/weight"]
    )


def test_a_classifier_served_with_another_whisper_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bridge.engine.classifier import AmdClassifier
    from bridge.engine.detector import warn_if_trained_on_another_whisper
    from bridge.engine.models import default_classifier_path
    from bridge.engine.whisper_files import whisper_fingerprint

    path = default_classifier_path()
    clf = AmdClassifier.load(path)
    shipped = resolve_whisper_model(EMBEDDED_SHORT)
    clf.model.meta = {
        "training": {"whisper": {"model": "x", "sha256": whisper_fingerprint(shipped)}}
    }
    assert not warn_if_trained_on_another_whisper(clf, path, shipped)
    assert warn_if_trained_on_another_whisper(clf, path, BASE)
    assert "trained on the transcripts of Whisper 'x'" in caplog.text
    clf.model.meta = {"training": {}}  # a classifier of text rows, or an older one
    assert not warn_if_trained_on_another_whisper(clf, path, BASE)
