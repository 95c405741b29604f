"""Tests of the room privacy policy."""
