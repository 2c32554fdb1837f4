"""garrison.cli."""
