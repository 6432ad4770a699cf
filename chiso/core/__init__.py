"""Core: settings, the warehouse connection and schema, the working-day calendar. Imports only chiso.contract (the raw tables follow its entities)."""
