"""A small shop service: the Python producer of the conformance suite."""
