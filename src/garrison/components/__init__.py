"""garrison.components."""
