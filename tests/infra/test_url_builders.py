"""The URL builders the tests keep between apps (tests/support/routing.py) build what werkzeug's own build."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import Rule

from tests.support import routing

VALUES = {"uuid": "0190f0b8-0000-7000-8000-000000000001", "integer": "7", "path": "a/b c", "default": "some value"}


def _values(rule: Rule) -> dict[str, str]:
    kinds = {name: type(converter).__name__.removesuffix("Converter").lower()
             for name, converter in rule._converters.items()}
    # an argument with no converter is one the rule's defaults give
    return {name: VALUES.get(kind, VALUES["default"]) for name, kind in kinds.items()}


def test_every_rule_builds_the_same_url_with_a_kept_builder_as_with_its_own(app: Flask) -> None:
    assert Rule._compile_builder is routing._kept_builder
    compared = kept = 0
    for rule in app.url_map.iter_rules():
        values = _values(rule)
        for append_unknown, extra in ((False, {}), (True, {"page": "2", "q": "a&b"})):
            own = routing._compile_builder(rule, append_unknown)
            shared = routing._kept_builder(rule, append_unknown)
            kept += shared is not own
            assert shared(rule, **values, **extra) == own(rule, **values, **extra), rule.rule
            compared += 1
        # and through werkzeug's public path, the bound builder the rule was given
        assert rule.build(values) == routing._compile_builder(rule, True)(rule, **values)
    assert compared > 200
    # the builders really are shared: most rules (those without defaults) got a kept one
    assert kept > compared // 2


def test_two_rules_of_the_same_shape_get_one_builder_and_their_own_converters() -> None:
    first, second = Flask("first"), Flask("second")
    for app in (first, second):
        app.add_url_rule("/cases/<uuid:case_id>/images/<int:number>", "image", lambda **_: "")
    one = next(r for r in first.url_map.iter_rules() if r.endpoint == "image")
    other = next(r for r in second.url_map.iter_rules() if r.endpoint == "image")
    assert routing._kept_builder(one, False) is routing._kept_builder(other, False)
    values = {"case_id": "0190f0b8-0000-7000-8000-000000000001", "number": 3}
    assert one.build(values) == other.build(values) == ("", "/cases/0190f0b8-0000-7000-8000-000000000001/images/3")
    with first.test_request_context():
        from flask import url_for
        assert url_for("image", case_id=values["case_id"], number=3, page=2) == (
            "/cases/0190f0b8-0000-7000-8000-000000000001/images/3?page=2")


def test_a_rule_with_defaults_is_compiled_as_werkzeug_compiles_it() -> None:
    app = Flask("defaults")

    def listing(page: int) -> str:
        return str(page)

    app.add_url_rule("/list/", "listing", listing, defaults={"page": 1})
    app.add_url_rule("/list/<int:page>", "listing", listing)
    rule = next(r for r in app.url_map.iter_rules() if r.defaults)
    assert routing._kept_builder(rule, False) is not routing._kept_builder(rule, False)
    with app.test_request_context():
        from flask import url_for
        assert url_for("listing") == "/list/"
        assert url_for("listing", page=3) == "/list/3"
