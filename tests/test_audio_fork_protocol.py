"""What mod_audio_fork sends, read by the pure codec: stream parameters from the
URL and the metadata frame, and the callee's channel out of stereo frames cut
at any length (the module sends whatever piled up, not whole packets)."""

import contextlib
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import ProtocolError
from bridge.protocols import audio_fork as wire
from bridge.protocols.flags import parse_flag
from bridge.session import Cause, Decision, Status

CHANNEL = "0f3c0c2e-7f34-4a7c-9a39-5c6c3b0e8e11"


def test_defaults_are_the_documented_command_mono_16k():
    params = wire.params_from_path("/ws/audio-fork")
    assert (params.rate, params.mix, params.uuid, params.channels) == (16000, "mono", None, 1)


def test_the_url_and_then_the_metadata_set_the_stream():
    params = wire.params_from_path(f"/ws/audio-fork?rate=8k&mix=stereo&uuid={CHANNEL}")
    assert (params.rate, params.channels, params.uuid) == (8000, 2, CHANNEL)
    params = wire.params_with_metadata(params, json.dumps({"rate": 16000, "mix": "mono"}))
    assert (params.rate, params.channels, params.uuid) == (16000, 1, CHANNEL)


def test_metadata_that_is_not_an_object_sets_nothing():
    params = wire.params_from_path(f"/ws/audio-fork?uuid={CHANNEL}")
    assert wire.params_with_metadata(params, '["a", 1]') == params


@pytest.mark.parametrize(
    ("path", "metadata", "why"),
    [
        ("/ws/audio-fork?rate=11025", None, "rate"),
        ("/ws/audio-fork?rate=64000", None, "not supported"),
        ("/ws/audio-fork?mix=quad", None, "mono, mixed or stereo"),
        ("/ws/audio-fork?uuid=a%20b", None, "not a channel uuid"),
        ("/ws/audio-fork", '{"uuid": "x\\napi shutdown"}', "not a channel uuid"),
        ("/ws/audio-fork", '{"rate": true}', "rate"),
        ("/ws/audio-fork", "{not json", "not JSON"),
        ("/ws/audio-fork", '{"pad": "' + "x" * 9000 + '"}', "longer than"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(path, metadata, why):
    with pytest.raises(ProtocolError, match=why):
        params = wire.params_from_path(path)
        if metadata is not None:
            wire.params_with_metadata(params, metadata)


@given(st.text(max_size=200))
def test_any_metadata_text_parses_or_raises_the_documented_error(text):
    with contextlib.suppress(ProtocolError):
        wire.params_with_metadata(wire.ForkParams(), text)


@given(st.lists(st.integers(0, 37), min_size=1, max_size=30))
def test_the_left_channel_is_the_same_however_frames_are_cut(cuts):
    rng = np.random.default_rng(len(cuts))
    left = rng.integers(-32768, 32767, 300, dtype=np.int16)
    right = rng.integers(-32768, 32767, 300, dtype=np.int16)
    stereo = np.stack([left, right], axis=1).astype("<i2").tobytes()
    splitter = wire.LeftChannel(2)
    out, pos = b"", 0
    for cut in cuts:
        out += splitter.feed(stereo[pos : pos + cut])
        pos += cut
    out += splitter.feed(stereo[pos:])
    assert out == left.astype("<i2").tobytes()


def test_mono_frames_pass_through():
    assert wire.LeftChannel(1).feed(b"\x01\x02\x03") == b"\x01\x02\x03"


def test_the_result_is_a_json_message_the_module_turns_into_an_event():
    decision = Decision(
        Status.MACHINE, Cause.CLASSIFIER, 2.0, proba_human=0.07, transcript="please leave a message"
    )
    message = json.loads(wire.result_message(decision, CHANNEL))
    assert message["type"] == "json"
    assert message["data"]["status"] == "MACHINE" and message["data"]["uuid"] == CHANNEL
    assert json.loads(wire.error_message("bad"))["type"] == "error"


def test_message_end_comes_from_the_query_or_the_metadata():
    assert wire.params_from_path("/ws/audio-fork?message_end=yes").message_end is True
    params = wire.params_with_metadata(wire.params_from_path("/"), '{"message_end": false}')
    assert params.message_end is False
    assert wire.params_from_path("/ws/audio-fork").message_end is None
    with pytest.raises(ProtocolError, match="message_end"):
        wire.params_with_metadata(wire.ForkParams(), '{"message_end": "sometimes"}')


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (0, False), ("YES", True), (" off ", False), ("1", True), ("false", False)],
)
def test_flags_as_pbxs_and_clients_spell_them(value, expected):
    assert parse_flag(value, "x") is expected


@pytest.mark.parametrize("value", ["", "2", 2, None, 1.0, "ja", "yes!"])
def test_other_flag_values_are_refused_by_name(value):
    with pytest.raises(ProtocolError, match="x="):
        parse_flag(value, "x")
