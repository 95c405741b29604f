"""Tests for the engine host (no Home Assistant involved)."""
