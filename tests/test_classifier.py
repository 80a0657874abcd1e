"""Text features, the classifier's maths, and the safety of its file format."""

import math
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.feature_extraction.text import TfidfVectorizer

from bridge.engine.classifier import FORMAT, AmdClassifier, WindowScales
from bridge.engine.textfeatures import (
    AnalyzerConfig,
    TfidfFeaturizer,
    analyze,
    fit_vocabulary,
    normalize_text,
)
from bridge.errors import ModelError
from bridge.session.decision import TimingFeatures
from training.classifier import Example, evaluate, fit

TEXTS = [
    "Hi, you've reached Mike. Please leave a message after the tone.",
    "Hello? Who is this?",
    "The number you have dialed is not in service.",
    "Hello, he's not available right now, can I take a message?",
    "Thank you for calling Acme Bank. For English, press one.",
    "Yeah, hello.",
    "Hello?",
    "Please leave your message after the beep.",
]
LABELS = [0, 1, 0, 1, 0, 1, 1, 0]
TIMINGS = [
    TimingFeatures(0.3, 1.7, 0.0, 1, 2.0),
    TimingFeatures(0.6, 0.8, 0.6, 1, 2.0),
    TimingFeatures(0.2, 1.8, 0.0, 1, 2.0),
    TimingFeatures(0.4, 1.6, 0.0, 1, 2.0),
    TimingFeatures(0.1, 1.9, 0.0, 2, 2.0),
    TimingFeatures(0.7, 0.6, 0.7, 1, 2.0),
    TimingFeatures(0.5, 0.4, 1.1, 1, 2.0),
    TimingFeatures(0.2, 1.6, 0.2, 1, 2.0),
]


def test_normalize_text():
    assert normalize_text("  Hello?  WHO'S   there… Café!") == "hello who's there cafe"
    assert normalize_text("You\u2019ve reached") == "you've reached"
    assert normalize_text("???") == ""


def test_char_ngrams_stay_inside_words():
    _, chars = analyze("ab cd", AnalyzerConfig(word_ngrams=(1, 1), char_ngrams=(2, 3)))
    assert "c: a" in chars and "c:b c" not in chars and "c:ab " in chars


def test_tfidf_matches_scikit_learn_on_the_same_terms():
    """Our runtime TF-IDF equals scikit-learn's (smooth idf, sublinear tf, l2) per block."""
    cfg = AnalyzerConfig()
    vocab, idf = fit_vocabulary(TEXTS, cfg)
    ours = TfidfFeaturizer(vocab, idf, cfg)
    for block in (0, 1):
        ref = TfidfVectorizer(
            analyzer=lambda t, b=block: list(analyze(t, cfg)[b].elements()), sublinear_tf=True
        )
        matrix = ref.fit_transform(TEXTS).toarray()
        names = ref.get_feature_names_out()
        for row, text in zip(matrix, TEXTS, strict=True):
            mine = ours.transform(text)
            for name, value in zip(names, row, strict=True):
                assert mine.get(ours.index[name], 0.0) == pytest.approx(value, abs=1e-9)


def _examples(with_timing: bool) -> list[Example]:
    return [
        Example(t, tf if with_timing else None, y, f"g{i}")
        for i, (t, y, tf) in enumerate(zip(TEXTS, LABELS, TIMINGS, strict=True))
    ]


@pytest.mark.parametrize("with_timing", [False, True])
def test_fitted_model_separates_training_data_and_survives_a_round_trip(tmp_path, with_timing):
    clf = fit(_examples(with_timing), min_df=1)
    metrics = evaluate(clf, _examples(with_timing))
    assert metrics["accuracy"] == 1.0
    path = tmp_path / "m.npz"
    clf.save(path)
    loaded = AmdClassifier.load(path)
    assert loaded.model.uses_timing is with_timing
    for text, timing in zip(TEXTS, TIMINGS, strict=True):
        t = timing if with_timing else None
        assert loaded.proba_human(text, t) == pytest.approx(clf.proba_human(text, t), abs=1e-12)


def test_timing_model_refuses_to_guess_without_timing():
    clf = fit(_examples(True), min_df=1)
    with pytest.raises(ValueError, match="timing"):
        clf.proba_human("hello", None)


class _Exploit:
    """Unpickling this would create a file: proof that a loader ran pickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _saved(tmp_path) -> dict:
    path = tmp_path / "good.npz"
    clf = fit(_examples(True), min_df=1)
    clf.model.window_scales = WindowScales((2.0, 5.0), (0.6, 0.9))
    clf.save(path)
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def test_a_pickle_inside_the_model_file_is_refused_and_never_run(tmp_path):
    arrays = _saved(tmp_path)
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _Exploit(str(marker))
    arrays["text_coef"] = evil
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays)
    with zipfile.ZipFile(path) as z:  # the payload really is a pickle in the file
        assert b"pwned" in z.read("text_coef.npy")
    with pytest.raises(ModelError, match="corrupt or unsafe"):
        AmdClassifier.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content", [pickle.dumps({"coef": [1, 2, 3]}), b"hello, this is a text file\n", b""]
)
def test_a_file_that_is_not_an_npz_archive_is_refused_saying_so(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="is not a classifier: expected the .npz archive") as e:
        AmdClassifier.load(path)
    assert "pickle" not in str(e.value)
    with pytest.raises(ModelError, match="a folder, not a file"):
        AmdClassifier.load(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("idf"), "lacks 'idf'"),
        (lambda a: a.update(format=np.array("other/9")), "format"),
        (lambda a: a.update(idf=a["idf"][:-1]), "differ in length"),
        (lambda a: a.update(timing_scale=np.zeros_like(a["timing_scale"])), "invalid weights"),
        (lambda a: a.update(intercept=np.array(np.nan)), "invalid weights"),
        (lambda a: a.update(logit_scale=np.array(0.0)), "invalid weights"),
        (lambda a: a.update(scale_windows=np.array([3.0, 2.0])), "windows must increase"),
        (lambda a: a.update(window_scale_values=np.array([0.5])), "as many scales"),
        (lambda a: a.update(window_scale_values=np.array([0.5, 0.0])), "scales positive"),
        (lambda a: a.update(scale_windows=np.array([2.0, np.inf])), "must be finite"),
        (lambda a: a.update(scale_windows=np.array(["a", "b"])), "wrong kind"),
        (lambda a: a.update(window_scale_values=np.array([[0.5, 0.6]])), "not 1-D"),
        (lambda a: a.update(idf=np.array(["x"] * len(a["idf"]))), "wrong kind"),
        (lambda a: a.update(intercept=np.array([1.0, 2.0])), "wrong kind"),
        (lambda a: a.update(timing_names=np.array(["a", "b", "c", "d", "e"])), "expects timing"),
        (lambda a: a.update(meta=np.array("{not json")), "metadata"),
        (lambda a: a.update(meta=np.array("[1, 2]")), "not a JSON object"),
        (lambda a: a.update(meta=np.array('{"analyzer": 5}')), "'analyzer' is not an object"),
    ],
)
def test_inconsistent_model_files_are_refused_with_a_reason(tmp_path, change, message):
    arrays = _saved(tmp_path)
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match=message):
        AmdClassifier.load(path)


def test_truncated_and_missing_files(tmp_path):
    path = tmp_path / "good.npz"
    fit(_examples(False), min_df=1).save(path)
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelError, match="corrupt"):
        AmdClassifier.load(truncated)
    with pytest.raises(ModelError, match="does not exist"):
        AmdClassifier.load(tmp_path / "nope.npz")


def test_file_declares_its_format(tmp_path):
    path = tmp_path / "m.npz"
    fit(_examples(False), min_df=1).save(path)
    with np.load(path, allow_pickle=False) as data:
        assert str(data["format"]) == FORMAT


def test_the_logit_scale_softens_the_answer_and_survives_a_round_trip(tmp_path):
    clf = fit(_examples(True), min_df=1)
    text, timing = TEXTS[0], TIMINGS[0]
    sure = clf.proba_human(text, timing)
    clf.model.logit_scale = 0.5
    softer = clf.proba_human(text, timing)
    z = math.log(sure / (1 - sure))
    assert softer == pytest.approx(1 / (1 + math.exp(-0.5 * z)))
    path = tmp_path / "scaled.npz"
    clf.save(path)
    assert AmdClassifier.load(path).proba_human(text, timing) == pytest.approx(softer)


def test_a_file_from_before_calibration_loads_with_scale_one(tmp_path):
    arrays = _saved(tmp_path)
    arrays.pop("logit_scale")
    path = tmp_path / "old.npz"
    np.savez(path, **arrays)
    assert AmdClassifier.load(path).model.logit_scale == 1.0


def test_window_scales_interpolate_between_the_fitted_windows_and_hold_beyond():
    scales = WindowScales((2.0, 3.0, 5.0), (0.6, 0.8, 1.0))
    assert [scales.at(s) for s in (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 9.0)] == pytest.approx(
        [0.6, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0]
    )


def test_the_scale_follows_the_length_of_audio_asked_about_and_survives_a_round_trip(tmp_path):
    clf = fit(_examples(True), min_df=1)
    text, timing = TEXTS[0], TIMINGS[0]
    p = clf.proba_human(text, timing)
    z = math.log(p / (1 - p))
    clf.model.logit_scale = 0.8  # serves asks without timing only, once there are windows
    clf.model.window_scales = WindowScales((2.0, 5.0), (0.5, 1.0))
    path = tmp_path / "windows.npz"
    clf.save(path)
    loaded = AmdClassifier.load(path)
    assert loaded.model.window_scales == clf.model.window_scales
    assert timing.clip_s == 2.0
    assert loaded.proba_human(text, timing) == pytest.approx(1 / (1 + math.exp(-0.5 * z)))
    for clip_s, scale in ((1.5, 0.5), (3.5, 0.75), (5.0, 1.0), (8.0, 1.0)):
        longer = TimingFeatures(**{**timing.__dict__, "clip_s": clip_s})
        assert loaded.model.scale_for(longer) == pytest.approx(scale)
    assert loaded.model.scale_for(None) == 0.8


def test_a_model_calibrated_with_one_scale_stores_no_window_scales(tmp_path):
    clf = fit(_examples(True), min_df=1)
    path = tmp_path / "one.npz"
    clf.save(path)
    assert AmdClassifier.load(path).model.window_scales is None
    arrays = _saved(tmp_path)  # and files from before window scales existed
    arrays.pop("scale_windows")
    arrays.pop("window_scale_values")
    np.savez(path, **arrays)
    assert AmdClassifier.load(path).model.window_scales is None


with tempfile.TemporaryDirectory() as _tmp:
    _SAVED = _saved(Path(_tmp))
_KEYS = set(_SAVED) - {"format"}  # a wrong format is refused before anything is read
_ANY_ARRAY = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.int64, np.bool_, np.dtype("U3")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(sorted(_KEYS)), _ANY_ARRAY, min_size=1, max_size=3))
def test_any_arrays_in_a_model_file_load_or_are_refused_with_a_reason(tmp_path_factory, changes):
    """A file an admin points the service at may hold anything: it loads, or it is a
    ModelError naming the file, never another exception."""
    tmp = tmp_path_factory.mktemp("fuzz")
    arrays = {**_SAVED, **changes}
    path = tmp / "any.npz"
    np.savez(path, **arrays)
    try:
        clf = AmdClassifier.load(path)
    except ModelError as exc:
        assert str(path) in str(exc)
        return
    clf.proba_human(TEXTS[0], TIMINGS[0])  # what loads also answers
