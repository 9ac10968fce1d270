"""Fake Gemini Live server for tests."""
