"""Gristmill: a desktop workbench for multi-step work."""

__version__ = "0.1.0"
