"""garrison.stores."""
