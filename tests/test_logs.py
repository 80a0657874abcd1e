import json
import logging

from bridge.logs import JsonFormatter


def test_json_lines_carry_the_extra_fields_and_the_formatted_message():
    record = logging.LogRecord(
        "bridge.x", logging.INFO, __file__, 1, "call %s: %s", ("c1", "HUMAN"), None
    )
    record.call_id = "c1"
    record.proba_human = 0.93
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "call c1: HUMAN"
    assert (line["level"], line["logger"], line["call_id"], line["proba_human"]) == (
        "INFO",
        "bridge.x",
        "c1",
        0.93,
    )
    assert line["ts"].endswith("Z")
