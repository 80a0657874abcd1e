"""The word bookkeeping behind benchmarks/decision_window_ceiling.py: which words a
window holds, and whether they could begin a template of the other label."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from decision_window_ceiling import (
    WINDOW_S,
    ambiguous,
    begins,
    outcomes_by_max_window,
    rule_by_facet,
    shares,
    words,
    words_heard,
)

from bridge.session.decision import TimingFeatures
from training.classifier import Example
from training.texts import Template, load_templates


def test_words_drop_punctuation_and_pauses_but_keep_slots():
    assert words("Hey.|Hello?") == ["hey", "hello"]
    assert words("Hi, you've reached {name}.") == ["hi", "you've", "reached", "{name}"]


def test_words_heard_scale_with_the_share_of_speech_inside_the_window():
    frames_per_s = round(1 / WINDOW_S)
    # 0.5 s of silence, 2 s of speech, silence: a 1.5 s window holds half the speech.
    speech = np.zeros(5 * frames_per_s, bool)
    speech[frames_per_s // 2 : frames_per_s // 2 + 2 * frames_per_s] = True
    text = "one two three four five six seven eight"
    assert words_heard(text, speech, 1.5) == "one two three four"
    assert words_heard(text, speech, 0.4) == ""
    assert words_heard(text, speech, 4.0) == text
    assert words_heard(text, np.zeros(10, bool), 2.0) == ""


def test_a_slot_matches_as_many_words_as_its_values_take():
    template = words("Hi, you've reached {name}. Leave a message.")
    assert begins(words("Hi, you've reached Mary. Leave"), template)
    assert begins(words("Hi, you've reached Mary Ann. Leave"), template) is False
    assert begins(words("Hi, you've reached"), template)
    assert begins(words("Hi, you have"), template) is False
    company = words("Thank you for calling {company}. Please hold.")
    assert begins(words("Thank you for calling Bright Smile Orthodontics. Please"), company)
    assert begins(words("Thank you for calling Bright Smile"), company)  # cut inside it
    number = words("Call me on {number} today.")
    assert begins(words("Call me on 5 5 5, 1 2 3, 4 5 6 7 today"), number)


def test_ambiguity_is_about_the_other_labels_templates():
    templates = [
        Template("h1", "human", "Hey, it's {name}."),
        Template("m1", "machine", "Hey, it's {name}. Leave me a message."),
    ]
    assert ambiguous("Hey, it's Mike.", "machine", templates)
    assert ambiguous("Hey, it's Mike.", "human", templates)
    assert not ambiguous("Hey, it's Mike. Leave me", "machine", templates)


def test_the_project_templates_share_openings_across_labels():
    # What makes a 2 s decision hard: some greetings open the way people answer.
    templates = load_templates()
    assert ambiguous("Hey, it's Luis.", "machine", templates)
    assert ambiguous("Hello, I'm sorry", "machine", templates)
    assert not ambiguous("Hello, I'm sorry I missed your call.", "machine", templates)


def test_the_rule_waits_for_the_words_that_tell_the_labels_apart():
    """At 2 s every call has said "hello"; by 3 s a person asks who it is and a greeting
    asks for a message. With 2 s as the maximum the rule cannot know; with 3 s it can."""
    said = {
        2.0: {1: "hello", 0: "hello"},
        3.0: {1: "hello who is this", 0: "hello leave a message"},
    }
    examples = [
        Example(
            said[w][human],
            TimingFeatures(0.3, w - 0.5, 0.2, 1, w),
            human,
            f"t{n}",
            w,
            f"{split}{n}",
            split,
        )
        for split in ("train", "test")
        for n in range(40)
        for human in [n % 2]
        for w in (2.0, 3.0)
    ]
    outcomes = outcomes_by_max_window(examples)
    by_max = {last: shares(list(o.values())) for last, o in outcomes.items()}
    assert by_max[2.0]["notsure"] == 1.0  # "hello" is either, whatever the threshold
    assert by_max[3.0]["right"] == 1.0 and by_max[3.0]["decision_p50_s"] == 3.0
    kinds = {f"test{n}": {"text_class": "person" if n % 2 else "greeting"} for n in range(40)}
    by_kind = rule_by_facet(outcomes[2.0], kinds)["text_class"]
    assert {k: (r["calls"], r["notsure"]) for k, r in by_kind.items()} == {
        "greeting": (20, 1.0),
        "person": (20, 1.0),
    }
