"""The fuzz targets (tests/fuzz_targets.py) under Hypothesis: any bytes parse or
raise the documented error. scripts/fuzz.py runs the same targets longer, with
atheris' coverage guidance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_targets import SEEDS, TARGETS, check


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4096))
def test_any_bytes_parse_or_raise_the_documented_error(name, data):
    check(TARGETS[name], data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_seeds_go_all_the_way_through_without_an_error(name):
    for seed in SEEDS[name]:
        TARGETS[name](seed)  # well-formed: no ProtocolError either
