"""Constants for the Private Voice integration."""

import logging
from typing import Final

DOMAIN: Final = "private_voice"
LOGGER = logging.getLogger(__package__)

CONF_LANGUAGE: Final = "language"

# The public, policy-enforcing Wyoming service. 10600 clashes with nothing in
# the Wyoming convention (10200 piper, 10300 whisper, 10400 wake, 10700 satellites).
DEFAULT_PORT: Final = 10600
DEFAULT_BIND_ADDRESS: Final = "0.0.0.0"  # noqa: S104 - satellites reach it over the LAN
