"""Logs, request ids and metrics.

``metrics`` knows nothing of Flask, so services record their outcomes through it; ``logs`` formats
every line as one JSON object (the gunicorn config uses its formatter too); ``hooks`` wires both into
an app: the request id, the access line, the request histogram and ``/metrics``.
"""
