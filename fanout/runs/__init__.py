"""Runs as a user reads them: the views and the local and deployed sources (views.py)."""
