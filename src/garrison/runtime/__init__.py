"""garrison.runtime."""
