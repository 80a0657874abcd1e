"""The fuzz targets (tests/fuzz_targets.py) under Hypothesis: any bytes parse or
raise the documented error. scripts/fuzz.py runs the same targets longer, with
atheris' coverage guidance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_targets import TARGETS, check


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4096))
def test_any_bytes_parse_or_raise_the_documented_error(name, data):
    check(TARGETS[name], data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00\x10" + bytes(16) + b"\x10\x00\x04abcd",  # call id, then audio
        b"Content-Type: api/response\nContent-Length: 3\n\n+OK",
        b'rate=8k&mix=stereo\n{"uuid": "0f8c9b1e-6a1d-4d0e-9a55-3d6f1c2b7e10"}',
        b'rate=8000&encoding=ulaw\n{"type": "flush"}',
    ],
)
def test_well_formed_inputs_go_all_the_way_through(data):
    for target in TARGETS.values():
        check(target, data)
