"""Tests for the Private Voice integration."""
