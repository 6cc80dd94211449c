"""Hooks of the DataWorks provider."""
