"""Publish: write-audit-publish into reporting.*, the values as published, and explain."""
