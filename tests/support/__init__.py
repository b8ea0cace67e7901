"""Code the test suites share; nothing here is collected as a test, and fixtures stay in the conftest.py files.

- ``api``: referrals, uploads, submitted and signed cases built over the HTTP API, and what ended up stored
- ``billing``: facts and builders for the claims-engine tests (two practices, images, visits)
- ``claims``: sample claims for the 837D and FHIR exporters
- ``documents``: the text of a PDF and what a reader sees of HTML
- ``faults``: the storage check and the nothing-lost-nothing-extra verdict of the fault tests
- ``observability``: JSON log lines, Prometheus samples, an app on SQLite
- ``routes``: the app's own route table, for the security sweeps
- ``s3server``: pytest plugin serving S3 over HTTP with moto
- ``samples``: deterministic sample files, good and hostile
- ``settings``: settings for an app under test and the PostgreSQL server
- ``snapshots``: the app the security suites share and snapshots of its state
- ``storage``: streams for storage tests and reading objects back
- ``store_doubles``: stores that forward to a real one and break on command
- ``web``: users with passwords and signing in to the pages
- ``webhooks``: webhook and mail receivers and the outbox side of notifications
- ``world``: two practices and their people, built through the API
"""
