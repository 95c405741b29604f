"""Wyoming, Home Assistant's side: clients of engine hosts and satellites.

No Home Assistant import here (DESIGN layer 2); it builds on the ``wyoming``
library and the engine host's bounded framing.
"""
