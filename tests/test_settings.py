import argparse

import pytest

from bridge.errors import ConfigError
from bridge.settings import Settings


def parse(argv, environ=None) -> Settings:
    parser = argparse.ArgumentParser()
    Settings.add_arguments(parser)
    return Settings.load(parser.parse_args(argv), environ or {})


def test_defaults():
    s = parse([])
    assert s.whisper_model == "embedded-short"
    assert s.policy.window_s == 2.0 and s.policy.max_window_s == 7.0
    assert s.asr_options.pad_to_30s is False
    assert s.classifier_path().name == "amd-classifier.npz"


def test_environment_applies_and_flags_win():
    env = {"AMD_WINDOW_S": "1.5", "AMD_BATCH_SIZE": "8", "AMD_DEVICE": "cuda"}
    s = parse(["--batch-size", "4"], env)
    assert (s.window_s, s.batch_size, s.device) == (1.5, 4, "cuda")


def test_empty_environment_values_mean_unset():
    assert parse([], {"AMD_THRESHOLD": " "}).threshold == 0.8


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AMD_WINDOW_S": "two"}, "AMD_WINDOW_S='two' is not a valid float"),
        ({"AMD_DEVICE": "tpu"}, "choose one of cpu, cuda, auto"),
        ({"AMD_BATCH_SIZE": "0"}, "AMD_BATCH_SIZE must be at least 1"),
        ({"AMD_THRESHOLD": "0.3"}, "threshold"),
        ({"AMD_WINDOW_S": "8"}, "window"),
        ({"AMD_ASR_PAD": "10s"}, "choose one of none, 30s"),
        ({"AMD_BATCH_WAIT_MS": "-1"}, "AMD_BATCH_WAIT_MS"),
    ],
)
def test_invalid_values_fail_with_the_variable_named(env, message):
    with pytest.raises(ConfigError, match=message):
        parse([], env)


def test_every_setting_has_a_flag_and_a_documented_variable():
    parser = argparse.ArgumentParser()
    Settings.add_arguments(parser)
    text = parser.format_help()
    for name in Settings.__dataclass_fields__:
        assert "--" + name.replace("_", "-") in text
        assert "AMD_" + name.upper() in text


def test_the_configuration_page_documents_every_setting():
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for name in Settings.__dataclass_fields__:
        assert f"`AMD_{name.upper()}`" in page, name


def test_each_command_shows_the_settings_it_uses():
    from bridge.cli.main import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    detect, serve = commands["detect"].format_help(), commands["serve"].format_help()
    for flag in ("--whisper-model", "--threshold", "--batch-size", "--tones", "--log-level"):
        assert flag in detect and flag in serve
    for flag in ("--http-port", "--ami-host", "--esl-password", "--max-calls", "--message-end"):
        assert flag not in detect and flag in serve
    # a flag detect does not show is refused, not silently ignored
    with pytest.raises(SystemExit):
        build_parser().parse_args(["detect", "a.wav", "--ami-host", "pbx"])
