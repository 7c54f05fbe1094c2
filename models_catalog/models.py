"""Drugs, versioned population models, targets, dosing constraints, PGx rules, model cards (to come)."""
