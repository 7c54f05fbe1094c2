"""Therapy courses, doses, drug levels, Bayesian updates, recommendations and their review (to come)."""
