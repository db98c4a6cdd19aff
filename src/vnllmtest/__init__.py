"""vnllmtest: benchmark large language models on Vietnamese tasks as pytest tests."""

__version__ = "0.1.0"
