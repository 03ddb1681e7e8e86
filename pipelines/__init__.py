"""Prefect flows that run the DVC pipeline (dvc.yaml stays the one description of the DAG)."""
