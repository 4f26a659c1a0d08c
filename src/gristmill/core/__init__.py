"""The pure-Python core of Gristmill. Nothing here imports Qt."""
