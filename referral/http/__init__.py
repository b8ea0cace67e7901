"""The HTTP layer shared by the API (``referral.api``) and the pages (``referral.web``): the per-request
context, authentication and CSRF, abuse limits, security headers, the upload request class and the error
handlers. Neither ``api`` nor ``web`` imports the other; both import from here, and nothing below them
(services, models, billing, imaging, storage) imports Flask.
"""
