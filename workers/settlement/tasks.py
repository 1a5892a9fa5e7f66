"""Celery tasks of settlement."""
