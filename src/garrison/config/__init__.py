"""garrison.config."""
