"""Repository-level pytest configuration (the vnllmtest plugin itself lives in the package)."""

pytest_plugins = ["pytester"]
