"""Tests of the Wyoming protocol layer (no Home Assistant instance needed)."""
