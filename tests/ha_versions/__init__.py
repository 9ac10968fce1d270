"""The integration on real Home Assistant 2026.10.4 and 2026.11.0 processes."""
