"""Core: settings, the warehouse connection and schema, the working-day calendar. Imports no other chiso package."""
