"""Countersign: the command-line entry point and the embedded development runner."""
