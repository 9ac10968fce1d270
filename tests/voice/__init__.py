"""Tests of the voice layer: Live turns, sessions and Assist pipeline runs."""
