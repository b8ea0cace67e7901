"""The request parser every API blueprint uses: webargs' Flask parser, made to refuse two kinds of JSON
body that it would otherwise let through to a 500.

- Nesting deeper than Python's recursion limit (``[[[[...]]]]``) makes ``json.loads`` raise
  RecursionError, which webargs does not treat as invalid JSON.
- A ``\\ud800`` escape decodes to a lone surrogate: a ``str`` that cannot be encoded as UTF-8, so the
  database driver fails on it long after validation passed.

Both are answered like any other unreadable body: 400 with ``errors.json``.
"""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, abort


class RequestParser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            data = super()._raw_load_json(req)
            if data is not core.missing:
                # Any lone surrogate, in a key or a value at any depth, makes the encoding fail.
                json.dumps(data, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            abort(400, messages={"json": ["The JSON body is nested too deeply."]})
        except UnicodeEncodeError:
            abort(400, messages={"json": ["The JSON body holds text that is not valid Unicode."]})
        return data


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with the parser above; every API module builds its blueprint from it."""

    ARGUMENTS_PARSER = RequestParser()
