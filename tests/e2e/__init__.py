"""End-to-end step: a real Airflow 3 deployment against the DataWorks emulator (``make e2e``)."""
