"""Optuna search over the model zoo (see search/space.py for the search space)."""
