"""The domain: plain functions over a SQLAlchemy session. Nothing here reads the Flask request."""
