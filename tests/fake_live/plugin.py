"""Pytest fixtures for the fake Live server."""
