import pytest

from bridge.engine.asr import compression_ratio, guard_repetition


@pytest.mark.parametrize(
    ("text", "expected", "looped"),
    [
        ("Hello? Hello?", "Hello? Hello?", False),
        ("Hello Hello Hello Hello", "Hello Hello", True),
        ("Hi, this is Sarah speaking.", "Hi, this is Sarah speaking.", False),
        ("leave a message leave a message leave a message", "leave a message", True),
        ("the the the", "the the", True),
        ("", "", False),
        ("Sorry I missed your call. Sorry I missed", "Sorry I missed your call.", True),
        ("The mailbox belonging to the mailbox belonging", "The mailbox belonging to", True),
        ("Hello, who is it? Hello, who is it?", "Hello, who is it?", True),
        (
            "Please leave a message for Tom, leave a",
            "Please leave a message for Tom, leave a",
            False,
        ),
        ("You have reached the voicemail of John", "You have reached the voicemail of John", False),
    ],
)
def test_guard_repetition(text, expected, looped):
    assert guard_repetition(text) == (expected, looped)


def test_compression_ratio_flags_long_loops():
    assert compression_ratio("hello there") < 1.5
    assert compression_ratio("la " * 200) > 2.4
