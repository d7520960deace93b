"""Fixes: one module per fix id."""
