"""Fixtures for the protocol layer: no Home Assistant, real speech from piper."""

import pytest

# The engine host's tests make the same speech; these tests reuse it by name.
from ..engine_host.conftest import piper_voice_path, speak  # noqa: F401


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Skip Home Assistant: the protocol layer runs without it."""


@pytest.fixture(autouse=True)
def setup_core() -> None:
    """Skip Home Assistant: the protocol layer runs without it."""
