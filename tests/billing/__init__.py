"""Tests of the claims engine, its exporters and payer edits (builders: tests/support/billing.py)."""
