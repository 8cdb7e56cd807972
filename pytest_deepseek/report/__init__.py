"""Results store and report writers."""
