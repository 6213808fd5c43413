"""Framework integrations, each imported by its own path (the only place frameworks appear)."""
