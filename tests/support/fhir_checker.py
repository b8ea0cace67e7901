"""Checks a resource against every profile it claims in ``meta.profile``, and against base R4.

Two checkers work together:
- Medplum's validator (npm, run with Node by fhir_validator/validate.mjs) checks structure, data types, cardinality,
  fixed and pattern values, slices (by value, pattern and type discriminators) and FHIRPath invariants against
  a profile's snapshot (tests/support/fhir_profiles.py) and against the base definition;
- this module adds what that validator leaves out: codes of required bindings (against the value sets and code
  systems published in the same package), a claimed profile that no definition exists for, and elements that
  are present but empty.
Contained resources are checked the same way, against the profiles they claim.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from typing import Any

from tests.support.fhir_profiles import DEFINITIONS, VALIDATOR, _bundle, base_definitions, profiles

Resource = dict[str, Any]
CODED = ("code", "Coding", "CodeableConcept")


class _Validator:
    """One Node process for the test process, answering a JSON line per request."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("Node.js is needed for the FHIR profile tests (Debian package nodejs)")
        if not (DEFINITIONS / "profiles-resources.json").exists():
            raise RuntimeError("The FHIR validator is not installed: run 'bash infra/fhir-validator.sh'")
        # Node 20 has WebSocket only behind this flag; the validator's package refers to it when loaded.
        self.process = subprocess.Popen(
            [node, "--experimental-websocket", "--no-warnings", str(VALIDATOR / "validate.mjs")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=VALIDATOR, text=True)
        atexit.register(self.close)

    def validate(self, resource: Resource, profile: Resource | None) -> list[dict[str, Any]]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"resource": resource, "profile": profile}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the FHIR validator process ended")
        return list(json.loads(line)["issues"])

    def close(self) -> None:
        # Closing its input ends the process's read loop; then its output pipe is closed too.
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@cache
def _validator() -> _Validator:
    return _Validator()


# -- terminology -----------------------------------------------------------------------------------------


@cache
def _terminology() -> tuple[dict[str, Resource], dict[str, Resource]]:
    value_sets: dict[str, Resource] = {}
    code_systems: dict[str, Resource] = {}
    for name in ("valuesets.json", "v2-tables.json", "v3-codesystems.json"):
        for resource in _bundle(name):
            target = value_sets if resource["resourceType"] == "ValueSet" else code_systems
            target.setdefault(resource["url"], resource)
    return value_sets, code_systems


def _concepts(concepts: list[Resource]) -> Iterator[str]:
    for concept in concepts:
        yield concept["code"]
        yield from _concepts(concept.get("concept", []))


@cache
def expansion(url: str) -> frozenset[tuple[str, str]] | None:
    """The (system, code) pairs of a value set, or None when it cannot be enumerated from the package
    (filters, external code systems such as MIME types or languages): such a binding is not checked."""
    value_sets, code_systems = _terminology()
    value_set = value_sets.get(url.split("|")[0])
    if value_set is None:
        return None
    pairs: set[tuple[str, str]] = set()
    compose = value_set.get("compose", {})
    if compose.get("exclude"):
        return None
    for include in compose.get("include", []):
        if include.get("filter"):
            return None
        for nested in include.get("valueSet", []):
            inner = expansion(nested)
            if inner is None:
                return None
            pairs |= inner
        system = include.get("system")
        if system is None:
            continue
        if include.get("concept"):
            pairs |= {(system, c["code"]) for c in include["concept"]}
            continue
        code_system = code_systems.get(system)
        if code_system is None or code_system.get("content") not in (None, "complete"):
            return None
        pairs |= {(system, code) for code in _concepts(code_system.get("concept", []))}
    return frozenset(pairs)


# -- required bindings -----------------------------------------------------------------------------------


def _type_definition(type_code: str) -> Resource | None:
    return base_definitions().get(f"http://hl7.org/fhir/StructureDefinition/{type_code}")


def _element_for(elements: dict[str, Resource], path: str, key: str) -> tuple[Resource, str | None] | None:
    """The definition of ``key`` below ``path``, and for a choice element the type its name ends with."""
    if f"{path}.{key}" in elements:
        return elements[f"{path}.{key}"], None
    for element_path, element in elements.items():
        if element_path.startswith(f"{path}.") and element_path.endswith("[x]"):
            stem = element_path[len(path) + 1:-3]
            if "." not in stem and key.startswith(stem):
                suffix = key[len(stem):]
                for t in element.get("type", []):
                    if t["code"][0].upper() + t["code"][1:] == suffix:
                        return element, t["code"]
    return None


def _binding_problems(node: Resource, elements: dict[str, Resource], path: str, where: str) -> Iterator[str]:
    for key, value in node.items():
        if key in ("resourceType", "contained") or key.startswith("_"):
            continue
        found = _element_for(elements, path, key)
        if found is None:
            continue
        element, choice = found
        types = [choice] if choice else [t["code"] for t in element.get("type", [])]
        if "contentReference" in element:
            reference = element["contentReference"].lstrip("#")
            target = elements.get(reference)
            element, types = (target, [t["code"] for t in target.get("type", [])]) if target else (element, [])
        items = value if isinstance(value, list) else [value]
        binding = element.get("binding", {})
        allowed = expansion(binding["valueSet"]) if binding.get("strength") == "required" and \
            binding.get("valueSet") else None
        for index, item in enumerate(items):
            at = f"{where}.{key}" + (f"[{index}]" if isinstance(value, list) else "")
            if allowed is not None and len(types) == 1 and types[0] in CODED:
                yield from _coded_problems(item, types[0], allowed, at, binding["valueSet"])
            if isinstance(item, dict) and len(types) == 1:
                type_code = types[0]
                if type_code in ("BackboneElement", "Element"):
                    yield from _binding_problems(item, elements, element["path"], at)
                elif type_code != "Resource" and (definition := _type_definition(type_code)) is not None:
                    inner = {e["path"]: e for e in definition["snapshot"]["element"]}
                    yield from _binding_problems(item, inner, type_code, at)


def _coded_problems(item: Any, type_code: str, allowed: frozenset[tuple[str, str]], at: str,
                    value_set: str) -> Iterator[str]:
    if type_code == "code":
        if item not in {code for _, code in allowed}:
            yield f"{at}: {item!r} is not in the required value set {value_set}"
        return
    codings = [item] if type_code == "Coding" else item.get("coding", [])
    if not any((c.get("system"), c.get("code")) in allowed for c in codings):
        yield f"{at}: no coding from the required value set {value_set}"


def required_binding_problems(resource: Resource, definition: Resource) -> list[str]:
    elements = {}
    for element in definition["snapshot"]["element"]:
        # Slices repeat their element's path; the binding is the element's own.
        elements.setdefault(element["path"], element)
    return list(_binding_problems(resource, elements, resource["resourceType"], resource["resourceType"]))


# -- slices ----------------------------------------------------------------------------------------------


def _value_of(element: Resource, prefix: str) -> tuple[str, Any] | None:
    """An element's fixed[x] or pattern[x] value: ("fixed" or "pattern", value)."""
    for key, value in element.items():
        if key.startswith(prefix) and key != prefix:
            return prefix, value
    return None


def _matches(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every element of the pattern is in the value (lists: each item somewhere)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(_matches(item, p) for item in value) for p in pattern)
    return bool(value == pattern)


def _conforms_to(value: Any, element: Resource) -> bool:
    fixed, pattern = _value_of(element, "fixed"), _value_of(element, "pattern")
    if fixed is not None and value != fixed[1]:
        return False
    return pattern is None or _matches(value, pattern[1])


def slice_problems(resource: Resource, definition: Resource) -> list[str]:
    """What the validator does not check inside a slice: fixed values held exactly, pattern values, required
    children and the data types a slice allows its value to take. Slices on the resource's own elements."""
    elements = {e["id"]: e for e in definition["snapshot"]["element"]}
    found = []
    resource_type = resource["resourceType"]
    for element_id, element in elements.items():
        if "sliceName" not in element or element_id.count(".") != 1 or element_id.count(":") != 1:
            continue
        sliced_id = element_id.split(":")[0]
        name = sliced_id.split(".", 1)[1]
        slicing = elements[sliced_id].get("slicing", {})
        items = resource.get(name, [])
        items = items if isinstance(items, list) else [items]
        discriminators: list[Resource] = slicing.get("discriminator", [])

        def selects(item: Any, slice_id: str = element_id, discriminators: list[Resource] = discriminators) -> bool:
            for discriminator in discriminators:
                path = discriminator["path"]
                target = elements.get(slice_id if path == "$this" else f"{slice_id}.{path}")
                value = item if path == "$this" else (item.get(path) if isinstance(item, dict) else None)
                wanted = target and (_value_of(target, "pattern") or _value_of(target, "fixed"))
                if not wanted or not _matches(value, wanted[1]):
                    return False
            return True

        for index, item in enumerate(i for i in items if selects(i)):
            where = f"{resource_type}.{name} (slice {element['sliceName']}, item {index})"
            if not _conforms_to(item, element):
                found.append(f"{where}: does not have the slice's fixed or pattern value")
            children = {cid[len(element_id) + 1:]: c for cid, c in elements.items()
                        if cid.startswith(element_id + ".") and cid.count(".") == 2}
            for child_name, child in children.items():
                if child_name.endswith("[x]"):
                    stem = child_name[:-3]
                    keys = [k for k in item if k.startswith(stem)]
                    allowed = {stem + t["code"][0].upper() + t["code"][1:] for t in child.get("type", [])}
                    found += [f"{where}: {k} is not one of {sorted(allowed)}" for k in keys if k not in allowed]
                    present = bool(keys)
                    value = item[keys[0]] if keys else None
                else:
                    present = child_name in item
                    value = item.get(child_name)
                if child.get("min", 0) >= 1 and not present:
                    found.append(f"{where}: {child_name} is required")
                if present and not _conforms_to(value, child):
                    found.append(f"{where}: {child_name} does not have its fixed or pattern value")
    return found


# -- the checker -----------------------------------------------------------------------------------------


def _empty_problems(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if item in ([], {}, "", None):
                yield f"{where}.{key} is empty"
            yield from _empty_problems(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _empty_problems(item, f"{where}[{index}]")


def problems(resource: Resource) -> list[str]:
    """Everything wrong with a resource against base R4 and each profile it claims; empty when it conforms."""
    resource_type = resource.get("resourceType", "?")
    where = f"{resource_type}/{resource.get('id', '?')}"
    found: list[str] = list(_empty_problems(resource, where))
    claimed = resource.get("meta", {}).get("profile", [])
    if not claimed:
        found.append(f"{where} claims no profile in meta.profile")
    base_url = f"http://hl7.org/fhir/StructureDefinition/{resource_type}"
    checks: list[tuple[str, Resource | None]] = [(base_url, None)]
    for url in claimed:
        definition = profiles().get(url)
        if definition is None:
            found.append(f"{where} claims {url}, a profile the checker has no definition of")
            continue
        if definition["type"] != resource_type:
            found.append(f"{where} claims {url}, a profile of {definition['type']}")
            continue
        checks.append((url, definition if url != base_url else None))
    for url, definition in checks:
        for issue in _validator().validate(resource, definition):
            if issue["severity"] in ("error", "fatal"):
                found.append(f"{where} against {url}: {issue['message']} at {', '.join(issue['expression'])}")
        full = definition or base_definitions()[base_url]
        found += [f"{problem} ({url})" for problem in required_binding_problems(resource, full)]
        found += [f"{problem} ({url})" for problem in slice_problems(resource, full)]
    for contained in resource.get("contained", []):
        found += problems(contained)
    return found


def base_problems(resource: Resource) -> list[str]:
    """For the server's own answers that claim no profile (CapabilityStatement, a searchset Bundle, an
    OperationOutcome): base R4 only, with the resources a Bundle carries checked against their profiles."""
    resource_type = resource.get("resourceType", "?")
    where = f"{resource_type}/{resource.get('id', '-')}"
    found = list(_empty_problems(resource, where))
    found += [f"{where}: {i['message']} at {', '.join(i['expression'])}"
              for i in _validator().validate(resource, None) if i["severity"] in ("error", "fatal")]
    found += required_binding_problems(resource, base_definitions()[
        f"http://hl7.org/fhir/StructureDefinition/{resource_type}"])
    for entry in resource.get("entry", []) if resource_type == "Bundle" else []:
        found += problems(entry["resource"])
    return found


def assert_conforms(resource: Resource) -> None:
    found = problems(resource)
    assert not found, "\n".join(found)
