"""Tests in a real browser (headless Chromium) against a real Home Assistant."""
