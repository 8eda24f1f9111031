"""Compatibility reports: what runs where and why, as data, rich tables and JSON."""
