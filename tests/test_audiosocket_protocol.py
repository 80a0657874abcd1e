"""The AudioSocket codec against bytes laid out by hand from Asterisk's
res_audiosocket.c / res_audiosocket.h (kind, 16-bit big-endian length, payload)."""

import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.audio.chunk import AudioFormat, Encoding
from bridge.protocols import audiosocket as wire
from bridge.protocols.audiosocket import AudioSocketError

CALL = uuid.UUID("dca6aa4c-e5d1-4481-b6b9-0f9fd58937e8")


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


def test_a_call_as_asterisk_sends_it_whole():
    audio = bytes(range(256)) + bytes(64)  # 320 bytes: 20 ms at 8 kHz
    stream = frame(0x01, CALL.bytes) + frame(0x10, audio) + frame(0x03, b"5") + frame(0x00, b"")
    messages = wire.Parser().feed(stream)
    assert messages[0] == wire.CallId(CALL)
    assert isinstance(messages[1], wire.Audio)
    assert messages[1].data == audio and messages[1].format.rate == 8000
    assert messages[2] == wire.Dtmf("5")
    assert messages[3] == wire.Hangup()


def test_byte_by_byte_gives_the_same_messages():
    stream = frame(0x01, CALL.bytes) + frame(0x12, b"\x01\x02" * 320) + frame(0xFF, b"\x04")
    parser = wire.Parser()
    got = []
    for i in range(len(stream)):
        got += parser.feed(stream[i : i + 1])
    assert got == wire.Parser().feed(stream)
    assert got[1].format.rate == 16000
    assert got[2] == wire.PeerError(b"\x04")
    assert parser.buffered == 0


def test_trailing_bytes_wait_for_the_rest_of_their_message():
    parser = wire.Parser()
    head = frame(0x10, b"\x00\x01" * 160)
    assert len(parser.feed(head + b"\x10\x01")) == 1
    assert parser.buffered == 2
    assert parser.feed(b"\x40" + bytes(0x140)) == [wire.Audio(_slin(8000), bytes(0x140))]


def _slin(rate):
    return AudioFormat(Encoding.SLIN, rate)


@pytest.mark.parametrize(
    ("kind", "rate"),
    [(0x10, 8000), (0x11, 12000), (0x12, 16000), (0x13, 24000), (0x14, 32000)]
    + [(0x15, 44100), (0x16, 48000), (0x17, 96000), (0x18, 192000)],
)
def test_every_audio_kind_has_its_rate_and_round_trips(kind, rate):
    payload = b"\x10\x00" * 80
    (message,) = wire.Parser().feed(frame(kind, payload))
    assert message == wire.Audio(_slin(rate), payload)
    assert wire.encode_audio(rate, payload) == frame(kind, payload)


def test_encoders_make_exactly_the_header_asterisk_reads():
    assert wire.encode_hangup() == b"\x00\x00\x00"
    assert wire.encode_call_id(CALL) == b"\x01\x00\x10" + CALL.bytes
    assert wire.encode_audio(8000, bytes(320)) == b"\x10\x01\x40" + bytes(320)


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        (frame(0x02, b""), "unknown message kind 0x02"),
        (b"\x42\x00\x10", "unknown message kind 0x42"),  # refused before its payload arrives
        (frame(0x01, b"short"), "16 bytes, not 5"),
        (frame(0x03, b"12"), "one printable ASCII byte"),
        (frame(0x03, b"\x00"), "one printable ASCII byte"),
        (frame(0x10, b""), "no samples"),
        (b"\x10\xff\xff", "exceeds the limit"),
    ],
)
def test_invalid_messages_raise_the_protocol_error(stream, why):
    parser = wire.Parser(max_payload=16384)
    with pytest.raises(AudioSocketError, match=why):
        parser.feed(stream)
    with pytest.raises(AudioSocketError, match="already broke"):
        parser.feed(frame(0x10, b"\x00\x00"))


def test_an_oversized_payload_cannot_be_encoded():
    with pytest.raises(ValueError):
        wire.encode(wire.Kind.SLIN_8K, bytes(70000))


@given(st.binary(max_size=600), st.integers(min_value=1, max_value=50))
def test_any_bytes_parse_or_raise_the_documented_error(data, chunk):
    parser = wire.Parser(max_payload=512)
    try:
        for i in range(0, len(data), chunk):
            for message in parser.feed(data[i : i + chunk]):
                assert isinstance(
                    message, wire.Hangup | wire.CallId | wire.Dtmf | wire.Audio | wire.PeerError
                )
    except AudioSocketError:
        pass


@given(
    st.lists(
        st.one_of(
            st.builds(lambda b: frame(0x10, b), st.binary(min_size=1, max_size=400)),
            st.builds(lambda b: frame(0x01, b), st.binary(min_size=16, max_size=16)),
            st.builds(lambda d: frame(0x03, d.encode()), st.sampled_from("0123456789*#ABCD")),
            st.just(frame(0x00, b"")),
        ),
        max_size=20,
    ),
    st.integers(min_value=1, max_value=64),
)
def test_valid_streams_parse_the_same_in_any_split(frames, chunk):
    stream = b"".join(frames)
    whole = wire.Parser().feed(stream)
    parser = wire.Parser()
    pieces = []
    for i in range(0, len(stream), chunk):
        pieces += parser.feed(stream[i : i + chunk])
    assert pieces == whole and len(whole) == len(frames)


def test_the_error_keeps_the_messages_before_the_bad_bytes():
    stream = frame(0x01, CALL.bytes) + frame(0x10, b"\x01\x00") + b"\x42\x00\x00"
    with pytest.raises(AudioSocketError) as caught:
        wire.Parser().feed(stream)
    assert caught.value.messages == [wire.CallId(CALL), wire.Audio(_slin(8000), b"\x01\x00")]


def test_runs_of_audio_at_one_rate_are_joined_and_nothing_else_moves():
    a, b, c, d = (bytes([n]) * 320 for n in (1, 2, 3, 4))
    stream = (
        frame(0x10, a) + frame(0x10, b) + frame(0x03, b"7") + frame(0x10, c)
        + frame(0x12, d) + frame(0x00, b"")
    )  # fmt: skip
    joined = wire.joined_audio(wire.Parser().feed(stream))
    assert joined == [
        wire.Audio(_slin(8000), a + b),
        wire.Dtmf("7"),
        wire.Audio(_slin(8000), c),
        wire.Audio(_slin(16000), d),  # a rate change stays visible
        wire.Hangup(),
    ]
    assert wire.joined_audio([]) == []
