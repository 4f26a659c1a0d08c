"""The PySide6 desktop app: Qt models and views over the core."""
