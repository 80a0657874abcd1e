"""Values sent to a PBX as channel variables stay one printable line."""

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from bridge.protocols.channel_vars import MAX_VALUE_CHARS, channel_variables, sanitize
from bridge.session import Cause, Decision, Status


@given(st.text())
def test_any_text_becomes_one_short_printable_line(text):
    clean = sanitize(text)
    assert len(clean) <= MAX_VALUE_CHARS
    assert clean == clean.strip()
    assert not any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in clean)


def test_line_breaks_of_every_kind_become_spaces():
    assert sanitize("a\r\nb\nc\x00d\u2028e\u0085f\tg") == "a b c d e f g"


def test_variables_of_a_decision():
    d = Decision(Status.HUMAN, Cause.CLASSIFIER, 2.0, proba_human=0.914, transcript="Hello?\n")
    assert channel_variables(d) == {
        "AMDSTATUS": "HUMAN",
        "AMDCAUSE": "CLASSIFIER-91-2000",
        "AMDCONFIDENCE": "0.91",
        "AMDTRANSCRIPT": "Hello?",
    }
    silent = Decision(Status.NOTSURE, Cause.NOAUDIO, 0.0)
    assert channel_variables(silent)["AMDCONFIDENCE"] == ""
