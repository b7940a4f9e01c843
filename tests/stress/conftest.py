"""The stress lab's pure tests run without a chain (`python -m pytest tests/stress -p no:ape_test`);
the replay test needs ape's fixtures and skips itself elsewhere."""
