"""Fetch → land → load: getting the portal's extracts into the raw layer without losing a row."""
