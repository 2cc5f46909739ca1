"""The demo (wip)."""
