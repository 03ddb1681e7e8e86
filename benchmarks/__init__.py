"""Speed and memory figures (`python -m benchmarks.<name>`); never timed tests."""
