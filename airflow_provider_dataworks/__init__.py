"""Apache Airflow provider for Alibaba Cloud DataWorks pipeline runs (deployment processes)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
