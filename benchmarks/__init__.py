"""Benchmarks of the DataWorks provider: ``python -m benchmarks.run`` (see ``benchmarks/README.md``)."""
