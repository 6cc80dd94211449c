"""Triggers of the DataWorks provider."""
