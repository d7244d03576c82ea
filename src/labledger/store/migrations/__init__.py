"""Alembic migrations of the SQL store. Revisions are files ``versions/NNNN_*.py``."""
