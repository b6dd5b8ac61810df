"""Shared helpers: network files, safe legacy loading, misc utilities, training stats, distributed."""
