import io
import logging
import logging.config

import orjson

from worker.config import Settings
from worker.logs import logging_config


def test_json_log_lines():
    config = logging_config(Settings(log_format="json", log_level="info"))
    logging.config.dictConfig(config)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)
    logging.getLogger("worker").warning("dead letter: reason=%s", "invalid_json")
    line = orjson.loads(stream.getvalue().splitlines()[-1])
    assert line["level"] == "WARNING" and line["logger"] == "worker"
    assert line["message"] == "dead letter: reason=invalid_json"
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_text_format_keeps_faust_default():
    assert logging_config(Settings(log_format="text")) is None
