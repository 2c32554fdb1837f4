"""garrison.telemetry."""
