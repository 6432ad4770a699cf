"""The chiso command (console script chiso.cli.app:entry_point) and its progress display."""
