"""Operators of the DataWorks provider."""
