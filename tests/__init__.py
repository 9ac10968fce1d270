"""Tests of the Gemini Live integration."""
