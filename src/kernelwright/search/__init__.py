"""Evolutionary search: population, archive retrieval, feedback, and the loop."""
