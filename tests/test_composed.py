"""Composed openers (training.composed): distinct texts from the phrase grammar, with
held-out texts worded only with held-out phrases."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from training.composed import (
    TEST,
    TRAIN,
    GrammarError,
    compose,
    load_grammar,
    sentence_case,
    split_pools,
)
from training.texts import fill, load_templates


def test_the_project_grammar_gives_at_least_1500_distinct_texts_of_every_class_on_both_sides():
    grammar = load_grammar()
    composed = compose(grammar, 2000, 0.25, seed=1)
    texts = [t.text for t, _ in composed]
    assert len(set(texts)) == len(texts) >= 1500
    by_side = Counter((t.text_class, side) for t, side in composed)
    for text_class in grammar.classes:
        assert by_side[(text_class, TRAIN)] > by_side[(text_class, TEST)] > 0
    assert {t.label for t, _ in composed} == {"human", "machine"}
    rng = random.Random(0)
    for template, _ in composed:  # every slot is one fill() knows
        assert "{" not in fill(template.text, rng)


def test_the_grammar_classes_are_the_ones_openers_csv_uses():
    opener_classes = {t.text_class for t in load_templates()}
    assert "" not in opener_classes
    assert opener_classes <= set(load_grammar().classes)


def test_a_held_out_text_is_worded_only_with_held_out_phrases(tmp_path: Path):
    path = tmp_path / "grammar.toml"
    path.write_text(
        "[pools]\n"
        'a = ["a1,", "a2,", "a3,", "a4,", "a5,", "a6,", "a7,", "a8,"]\n'
        'b = ["b1.", "b2.", "b3.", "b4.", "b5.", "b6.", "b7.", "b8."]\n'
        'tail = ["end.", "stop."]\n'
        '[[frame]]\nclass = "demo"\nlabel = "machine"\nparts = ["a", "b", "|", "tail?"]\n',
        encoding="utf-8",
    )
    grammar = load_grammar(path)
    sides = split_pools(grammar, 0.25, seed=3)
    assert len(sides[TEST]["a"]) == 2 and not set(sides[TEST]["a"]) & set(sides[TRAIN]["a"])
    assert sides[TEST]["tail"] == sides[TRAIN]["tail"]  # too small to divide
    composed = compose(grammar, 40, 0.25, seed=3)
    for template, side in composed:
        words = {w.strip(",.|").lower() for w in template.text.split()} - {"", "end", "stop"}
        allowed = {e.strip(",.") for pool in ("a", "b") for e in sides[side][pool]}
        assert words <= allowed, (template.text, side)
    assert {side for _, side in composed} == {TRAIN, TEST}
    assert any(" | " in t.text for t, _ in composed)


def test_pieces_are_joined_as_sentences_with_pauses():
    assert sentence_case(["hi,", "you've reached {name}.", "leave a message."]) == (
        "Hi, you've reached {name}. Leave a message."
    )
    assert sentence_case(["hello?", "|", "hello? anyone there?", "|okay, bye."]) == (
        "Hello? | Hello? Anyone there? | Okay, bye."
    )
    assert sentence_case(["", "{company}, this is {name}.", "how can I help?"]) == (
        "{company}, this is {name}. How can I help?"
    )


@pytest.mark.parametrize(
    ("frame", "problem"),
    [('parts = ["nope"]\nlabel = "human"', "no pool"), ('parts = ["a"]\nlabel = "robot"', "label")],
)
def test_a_grammar_that_names_what_it_does_not_define_is_refused(tmp_path, frame, problem):
    path = tmp_path / "grammar.toml"
    path.write_text(f'[pools]\na = ["x"]\n[[frame]]\nclass = "c"\n{frame}\n', encoding="utf-8")
    with pytest.raises(GrammarError, match=problem):
        load_grammar(path)


def test_phrases_added_in_a_new_batch_leave_the_earlier_sides_as_they_were(tmp_path: Path):
    first = ", ".join(f'"a{i}."' for i in range(12))
    added = ", ".join(f'"n{i}."' for i in range(8))
    frame = '[[frame]]\nclass = "demo"\nlabel = "human"\nparts = ["a"]\n'
    before = tmp_path / "before.toml"
    before.write_text(f"[pools]\na = [{first}]\n{frame}", encoding="utf-8")
    after = tmp_path / "after.toml"
    after.write_text(f"[pools]\na = [[{first}], [{added}]]\n{frame}", encoding="utf-8")
    grammar = load_grammar(after)
    assert grammar.pools["a"] == tuple(f"a{i}." for i in range(12)) + tuple(
        f"n{i}." for i in range(8)
    )
    old, new = split_pools(load_grammar(before), 0.25, seed=5), split_pools(grammar, 0.25, seed=5)
    assert new[TEST]["a"][:3] == old[TEST]["a"] and len(old[TEST]["a"]) == 3
    assert [e for e in new[TRAIN]["a"] if e.startswith("a")] == old[TRAIN]["a"]
    added_test = [e for e in new[TEST]["a"] if e.startswith("n")]
    assert len(added_test) == 2  # a quarter of the new batch, drawn on its own
    # one flat list of the same twenty phrases would have redrawn the first twelve's sides
    flat = tmp_path / "flat.toml"
    flat.write_text(f"[pools]\na = [{first}, {added}]\n{frame}", encoding="utf-8")
    redrawn = split_pools(load_grammar(flat), 0.25, seed=5)
    assert [e for e in redrawn[TEST]["a"] if e.startswith("a")] != old[TEST]["a"]


def test_a_pool_that_mixes_phrases_and_batches_is_refused(tmp_path: Path):
    path = tmp_path / "grammar.toml"
    path.write_text(
        '[pools]\na = ["x.", ["y.", "z."]]\n'
        '[[frame]]\nclass = "c"\nlabel = "human"\nparts = ["a"]\n',
        encoding="utf-8",
    )
    with pytest.raises(GrammarError, match="list of lists"):
        load_grammar(path)


def test_more_phrases_are_one_more_batch_of_their_pool(tmp_path: Path):
    first = ", ".join(f'"a{i}."' for i in range(12))
    frame = '[[frame]]\nclass = "demo"\nlabel = "human"\nparts = ["a"]\n'
    grammar_file = tmp_path / "grammar.toml"
    grammar_file.write_text(f"[pools]\na = [{first}]\n{frame}", encoding="utf-8")
    more = tmp_path / "more.toml"
    more.write_text("[pools]\na = [" + ", ".join(f'"n{i}."' for i in range(8)) + "]\n")
    batched = tmp_path / "batched.toml"
    batched.write_text(
        f"[pools]\na = [[{first}], [" + ", ".join(f'"n{i}."' for i in range(8)) + f"]]\n{frame}"
    )
    added = load_grammar(grammar_file, [more])
    assert added.batches == load_grammar(batched).batches
    assert split_pools(added, 0.25, seed=2) == split_pools(load_grammar(batched), 0.25, seed=2)
    plain = split_pools(load_grammar(grammar_file), 0.25, seed=2)
    assert [e for e in split_pools(added, 0.25, seed=2)[TEST]["a"] if e.startswith("a")] == (
        plain[TEST]["a"]
    )


@pytest.mark.parametrize(
    ("more", "problem"),
    [('[pools]\nnope = ["x.", "y."]\n', "no pool 'nope'"), ("[[frame]]\nclass = 'c'\n", "only")],
)
def test_more_phrases_for_a_pool_the_grammar_lacks_or_with_frames_are_refused(
    tmp_path: Path, more: str, problem: str
):
    path = tmp_path / "more.toml"
    path.write_text(more, encoding="utf-8")
    with pytest.raises(GrammarError, match=problem):
        load_grammar(None, [path])


def test_the_project_more_phrases_file_adds_to_every_pool_it_names():
    more = Path(__file__).resolve().parents[1] / "training" / "data" / "more-phrases.toml"
    base, added = load_grammar(), load_grammar(None, [more])
    assert set(added.pools) == set(base.pools)
    grown = [name for name in base.pools if len(added.pools[name]) > len(base.pools[name])]
    assert len(grown) == len(base.pools)  # every pool got a batch
    composed = compose(added, 4000, 0.25, seed=1)
    texts = [t.text for t, _ in composed]
    assert len(set(texts)) == len(texts) >= 3500
    rng = random.Random(0)
    for template, _ in composed:
        assert "{" not in fill(template.text, rng)
