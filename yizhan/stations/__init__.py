"""The station registry: schema, validation, import, storage and opening hours."""
