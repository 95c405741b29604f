"""The room privacy policy (DESIGN §3): pure decisions and counters, no I/O.

Decided here, enforced inside the audio paths (``protocol/``) and the Home
Assistant glue. Nothing in this package imports Home Assistant.
"""
