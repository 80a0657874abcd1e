"""The word bookkeeping behind benchmarks/decision_window_ceiling.py: which words a
window holds, and whether they could begin a template of the other label."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from decision_window_ceiling import WINDOW_S, ambiguous, begins, words, words_heard

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
