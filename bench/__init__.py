"""Benchmarks of the referral server against baselines measured in the same run (``make bench``).

Each benchmark starts what it measures (gunicorn with ``infra/gunicorn.conf.py``, Orthanc, a fresh PostgreSQL
database) on loopback, prints its figures with a ratio against its baseline, and stops everything it started,
also when it fails. ``python -m bench`` runs them and writes ``bench/results/latest.json``.
"""
