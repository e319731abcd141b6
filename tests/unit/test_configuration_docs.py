"""docs/configuration.md names every setting the entry points read: each field of each settings
class, as its PULSE_* variable, and nothing that no class reads."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from pydantic_settings import BaseSettings

import sinks.settings
import streams.settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
# Read outside the settings classes: by the Kafka runtime (kafka_dist) and the test suite.
ELSEWHERE = {"PULSE_KAFKA_HOME"}


def variables() -> set[str]:
    names = set()
    for module in (streams.settings, sinks.settings):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__:
                prefix = cls.model_config.get("env_prefix", "")
                names |= {(prefix + field).upper() for field in cls.model_fields}
    return names


def test_every_setting_is_documented_and_every_documented_one_exists():
    documented = set(re.findall(r"`(PULSE_[A-Z0-9_]+)`", DOC.read_text()))
    assert variables() - documented == set()
    assert documented - variables() - ELSEWHERE == set()
