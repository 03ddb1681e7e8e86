"""Independent reference implementations used only by tests (test oracles)."""
