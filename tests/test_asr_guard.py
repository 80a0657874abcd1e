import pytest

from bridge.engine.asr import compression_ratio, guard_repetition


@pytest.mark.parametrize(
    ("text", "expected", "looped"),
    [
        ("Hello? Hello?", "Hello? Hello?", False),
        ("Hello Hello Hello Hello", "Hello Hello", True),
        ("Hi, this is Sarah speaking.", "Hi, this is Sarah speaking.", False),
        (
            "leave a message leave a message leave a message",
            "leave a message leave a message",
            True,
        ),
        ("the the the", "the the", True),
        ("", "", False),
    ],
)
def test_guard_repetition(text, expected, looped):
    assert guard_repetition(text) == (expected, looped)


def test_compression_ratio_flags_long_loops():
    assert compression_ratio("hello there") < 1.5
    assert compression_ratio("la " * 200) > 2.4
