"""Shared fixtures for the Gemini Live tests."""

from pathlib import Path

import pytest

# Imported before the `hass` fixture runs: otherwise Home Assistant resolves
# `custom_components` to the test plugin's own testing folder.
import custom_components.gemini_live  # noqa: F401

pytest_plugins = ["tests.fake_live.plugin"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> None:
    """Let Home Assistant load this repository's custom integration."""


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> str:
    """Keep each test's config folder (and TTS cache) in a temporary folder."""
    return str(tmp_path)


@pytest.fixture
def live_model() -> str:
    """Return the entry's model (override it to run on another model family).

    2.5 native audio by default: its blocking tool calls are what most tests
    script; tests/voice/test_models.py runs every family.
    """
    return "gemini-2.5-flash-native-audio-preview-12-2025"
