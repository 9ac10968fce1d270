"""Gemini Live for Home Assistant."""
