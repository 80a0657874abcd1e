"""The ESL codec against bytes laid out as FreeSWITCH's mod_event_socket.c writes
them, and the commands it builds read back with FreeSWITCH's own argument
splitting (ported in tests/freeswitch/switch_strings.py)."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.protocols import esl
from bridge.protocols.channel_vars import sanitize
from tests.freeswitch.switch_strings import separate_string

CHANNEL = "0f3c0c2e-7f34-4a7c-9a39-5c6c3b0e8e11"
# What listener_run and api_exec write, with their exact line ends.
GREETING = b"Content-Type: auth/request\n\n"
ACCEPTED = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
API_OK = b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n"
NO_CHANNEL = b"Content-Type: api/response\nContent-Length: 22\n\n-ERR No such channel!\n"
EVENT_BODY = b"Event-Name: HEARTBEAT\nCore-UUID: 1234\n\n"
EVENT = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(EVENT_BODY) + EVENT_BODY
GOODBYE_TEXT = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
GOODBYE = (
    b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(GOODBYE_TEXT)
    + GOODBYE_TEXT
)
STREAM = GREETING + ACCEPTED + API_OK + NO_CHANNEL + EVENT + GOODBYE


def test_a_session_as_freeswitch_writes_it():
    messages = esl.Parser().feed(STREAM)
    kinds = [m.content_type for m in messages]
    assert kinds == [
        "auth/request",
        "command/reply",
        "api/response",
        "api/response",
        "text/event-plain",
        "text/disconnect-notice",
    ]
    assert messages[1].ok and messages[1].reply == "+OK accepted"
    assert messages[2].ok and messages[2].body == b"+OK\n"
    assert not messages[3].ok and messages[3].reply == "-ERR No such channel!"
    assert messages[4].body == EVENT_BODY and not messages[4].is_reply
    assert messages[5].body == GOODBYE_TEXT


def test_byte_by_byte_and_with_trailing_bytes():
    parser = esl.Parser()
    got = []
    for i in range(len(STREAM)):
        got += parser.feed(STREAM[i : i + 1])
    assert got == esl.Parser().feed(STREAM)
    partial = esl.Parser()
    assert partial.feed(API_OK + NO_CHANNEL[:30]) == esl.Parser().feed(API_OK)
    assert partial.feed(NO_CHANNEL[30:])[0].reply == "-ERR No such channel!"


def test_crlf_line_ends_and_leading_blank_lines_are_read_as_freeswitch_reads_them():
    messages = esl.Parser().feed(b"\r\n\nContent-Type: command/reply\r\nReply-Text: +OK\r\n\r\n")
    assert messages[0].get("reply-text") == "+OK"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"Content-Type api/response\n\n", "without a name"),
        (b"Content-Type: api/response\nContent-Length: 12x\n\n", "not a number"),
        (b"Content-Type: api/response\nContent-Length: 99999999\n\n", "exceeds"),
    ],
)
def test_malformed_messages_raise_the_documented_error(data, why):
    with pytest.raises(esl.EslError, match=why):
        esl.Parser().feed(data)


def test_the_error_keeps_the_messages_before_the_bad_bytes():
    with pytest.raises(esl.EslError) as caught:
        esl.Parser().feed(API_OK + b"garbage without colon\n\n")
    assert [m.body for m in caught.value.messages] == [b"+OK\n"]


def test_an_endless_header_block_is_refused():
    with pytest.raises(esl.EslError, match="longer than"):
        esl.Parser(max_header_bytes=1024).feed(b"X-Filler: " + b"a" * 2000)


@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_the_documented_error(data):
    with contextlib.suppress(esl.EslError):
        esl.Parser(max_body_bytes=1000).feed(data)


@given(st.binary(max_size=300), st.integers(1, 40))
def test_how_bytes_are_split_never_changes_the_messages(data, step):
    stream = STREAM + data
    try:
        whole = esl.Parser(max_body_bytes=1000).feed(stream)
    except esl.EslError:
        return
    parser = esl.Parser(max_body_bytes=1000)
    pieces = []
    for i in range(0, len(stream), step):
        pieces += parser.feed(stream[i : i + step])
    assert pieces == whole


def test_commands_are_laid_out_as_read_packet_expects():
    assert esl.auth("ClueCon") == b"auth ClueCon\n\n"
    assert esl.api("status") == b"api status\n\n"
    raw = esl.sendevent("amd::result", {"AMD-Status": "MACHINE"}, b'{"a":1}')
    assert raw == (
        b"sendevent CUSTOM\nEvent-Subclass: amd::result\nAMD-Status: MACHINE\n"
        b"Content-Length: 7\n\n"
        b'{"a":1}'
    )


@pytest.mark.parametrize(
    "value",
    ["MACHINE", "", "he's not here", r"back\slash \n not a newline", "'quoted'", "a  b", "$5 ${x}"],
)
def test_uuid_setvar_values_arrive_unchanged(value):
    raw = esl.uuid_setvar(CHANNEL, "AMDTRANSCRIPT", value)
    line = raw.decode().removesuffix("\n\n")
    assert line.count("\n") == 0
    argv = separate_string(line.removeprefix("api uuid_setvar "), 3)
    assert argv == [CHANNEL, "AMDTRANSCRIPT", value]


@given(st.text(max_size=80))
def test_any_sanitized_transcript_arrives_unchanged(text):
    value = sanitize(text)
    line = esl.uuid_setvar(CHANNEL, "AMDTRANSCRIPT", value).decode().removesuffix("\n\n")
    assert "\n" not in line and "\r" not in line
    assert separate_string(line.removeprefix("api uuid_setvar "), 3)[2] == value


@pytest.mark.parametrize(
    "bad",
    [
        lambda: esl.api("status\nexit"),
        lambda: esl.uuid_setvar("not a uuid; exit", "AMDSTATUS", "HUMAN"),
        lambda: esl.uuid_setvar(CHANNEL, "AMD STATUS", "HUMAN"),
        lambda: esl.uuid_setvar(CHANNEL, "AMDSTATUS", "HUMAN\napi shutdown"),
        lambda: esl.sendevent("amd::result", {"Unique-ID": CHANNEL}),
        lambda: esl.command("sendevent CUSTOM", {"X": "a\rb"}),
    ],
)
def test_commands_that_would_break_out_of_their_line_are_refused(bad):
    with pytest.raises(ValueError):
        bad()
