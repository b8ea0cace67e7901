"""The app's own route table, read at collection time: every rule of ``app.url_map``, its methods, its
path arguments and the request schemas its view declares, with the OpenAPI document's enumerations for
path arguments that are not ids. The security sweeps are generated from it, so a route added later is
swept (or flagged) without anyone editing a list."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import Schema
from werkzeug.routing import Rule

from referral import create_app
from storage import LocalStorage
from tests.support.settings import make_settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Locations of a request schema that make up the body (the rest are the query string and headers).
BODY_LOCATIONS = ("json", "form", "files")
ID_CONVERTERS = frozenset({"UUIDConverter", "IntegerConverter"})


@dataclass(frozen=True)
class Argument:
    name: str
    converter: str
    value: str | None = None  # fixed for arguments the OpenAPI document enumerates (document names)

    @property
    def is_id(self) -> bool:
        return self.converter in ID_CONVERTERS


@dataclass(frozen=True)
class RequestSchema:
    location: str
    name: str
    fields: frozenset[str]


@dataclass(frozen=True)
class Call:
    """One method of one rule, with any enumerated path argument fixed to one of its values."""

    method: str
    rule: str
    arguments: tuple[Argument, ...]
    schemas: tuple[RequestSchema, ...]
    responses: tuple[str, ...]  # media types of the documented success response

    @property
    def is_api(self) -> bool:
        return self.rule.startswith("/api/v1/")

    @property
    def template(self) -> str:
        """The rule as the README and the OpenAPI document spell it: ``/referrals/{referral_id}``."""
        path = self.rule
        for argument in self.arguments:
            spelled = argument.value if argument.value is not None else "{" + argument.name + "}"
            path = _replace_argument(path, argument.name, spelled)
        return path

    @property
    def openapi_template(self) -> str:
        """The rule as the OpenAPI document's path key: every argument as ``{name}``."""
        path = self.rule
        for argument in self.arguments:
            path = _replace_argument(path, argument.name, "{" + argument.name + "}")
        return path

    @property
    def id(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def argument_names(self) -> frozenset[str]:
        return frozenset(a.name for a in self.arguments)

    def path(self, ids: dict[str, str]) -> str:
        """The URL with each id argument replaced by ``ids[name]``; ``KeyError`` names an unknown one."""
        path = self.rule
        for argument in self.arguments:
            value = argument.value if argument.value is not None else ids[argument.name]
            path = _replace_argument(path, argument.name, value)
        return path

    def body_schemas(self) -> tuple[RequestSchema, ...]:
        return tuple(s for s in self.schemas if s.location in BODY_LOCATIONS)


def _replace_argument(path: str, name: str, value: str) -> str:
    start = path.index("<")
    while True:
        end = path.index(">", start)
        inner = path[start + 1:end]
        if inner.rpartition(":")[2] == name:
            return path[:start] + value + path[end + 1:]
        start = path.index("<", end)


def _schema_of(parameter: dict[str, Any], location: str) -> RequestSchema:
    declared = parameter["schema"]
    schema: Schema = declared() if isinstance(declared, type) else declared
    names = frozenset(field.data_key or name for name, field in schema.load_fields.items())
    return RequestSchema(location=location, name=type(schema).__name__, fields=names)


def _view_schemas(view: Any, method: str) -> tuple[RequestSchema, ...]:
    view_class = getattr(view, "view_class", None)
    function = getattr(view_class, method.lower(), None) if view_class is not None else view
    apidoc = getattr(function, "_apidoc", {}) or {}
    parameters = apidoc.get("arguments", {}).get("parameters", [])
    return tuple(_schema_of(p, p["in"]) for p in parameters)


def _openapi_path(rule: Rule) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = _replace_argument(path, name, "{" + name + "}")
    return path


def _enumerations(spec: dict[str, Any], openapi_path: str, method: str) -> dict[str, list[str]]:
    operation = spec.get("paths", {}).get(openapi_path, {})
    parameters = list(operation.get("parameters", [])) + list(operation.get(method.lower(), {}).get("parameters", []))
    return {p["name"]: list(p["schema"]["enum"]) for p in parameters
            if p.get("in") == "path" and "enum" in p.get("schema", {})}


def _success_media(spec: dict[str, Any], openapi_path: str, method: str) -> tuple[str, ...]:
    operation = spec.get("paths", {}).get(openapi_path, {}).get(method.lower(), {})
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith("2"):
            return tuple(response.get("content", {}))
    return ()


@dataclass(frozen=True)
class RouteTable:
    calls: tuple[Call, ...]
    openapi_paths: frozenset[str]
    id_rules: frozenset[str]  # every url_map rule with an id argument, for the coverage check


def _argument_converters(rule: Rule) -> dict[str, str]:
    converters = getattr(rule, "_converters", {})
    return {name: type(converters[name]).__name__ if name in converters else "default" for name in rule.arguments}


def _is_listed(rule: Rule) -> bool:
    """Every /api/v1 rule, and every page rule with an id."""
    if rule.rule.startswith("/api/v1/"):
        return True
    converters = _argument_converters(rule).values()
    return not rule.rule.startswith("/api/") and any(c in ID_CONVERTERS for c in converters)


def load_route_table() -> RouteTable:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        app = create_app(make_settings(root, f"sqlite:///{root / 'routes.db'}"), store=LocalStorage(root / "objects"))
        try:
            spec = app.test_client().get("/api/openapi.json").get_json()
            rules = list(app.url_map.iter_rules())
            views = dict(app.view_functions)
        finally:
            app.extensions["referral.engine"].dispose()

    calls: list[Call] = []
    id_rules: set[str] = set()
    for rule in rules:
        converters = _argument_converters(rule)
        if any(c in ID_CONVERTERS for c in converters.values()):
            id_rules.add(rule.rule)
        if not _is_listed(rule):
            continue
        openapi_path = _openapi_path(rule)
        for method in METHODS:
            if method not in (rule.methods or ()):
                continue
            enumerated = _enumerations(spec, openapi_path, method)
            variants: list[tuple[Argument, ...]] = [()]
            for name, converter in converters.items():
                values: list[str | None] = list(enumerated.get(name, [])) or [None]
                variants = [(*v, Argument(name, converter, value)) for v in variants for value in values]
            schemas = _view_schemas(views[rule.endpoint], method)
            media = _success_media(spec, openapi_path, method)
            calls.extend(Call(method=method, rule=rule.rule, arguments=arguments, schemas=schemas, responses=media)
                         for arguments in variants)
    calls.sort(key=lambda c: (c.template, METHODS.index(c.method)))
    return RouteTable(calls=tuple(calls), openapi_paths=frozenset(spec.get("paths", {})),
                      id_rules=frozenset(id_rules))


ROUTES = load_route_table()
