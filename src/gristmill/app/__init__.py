"""The PySide6 desktop app: Qt models and views over the core."""

from .qtcompat import keep_none_alive

keep_none_alive()
