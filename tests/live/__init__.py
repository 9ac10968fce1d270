"""Tests of the Live protocol client."""
