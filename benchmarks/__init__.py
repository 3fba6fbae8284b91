"""Scripts that print figures (see README.md): run each as ``python -m benchmarks.NAME`` from the
repository root."""
