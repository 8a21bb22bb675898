"""Keptn's own API descriptions (../shared/keptn/*.swagger.yaml) as JSON Schemas, to check Bosun's answers."""

from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

KEPTN = Path(__file__).resolve().parent / "keptn"
FILES = {"/api/v1": "api.swagger.yaml", "/api/mongodb-datastore": "mongodb-datastore.swagger.yaml",
         "/api/controlPlane/v1": "shipyard-controller.swagger.yaml"}


@lru_cache
def _document(name: str) -> dict:
    return yaml.safe_load((KEPTN / name).read_text())


def answer_schema(method: str, path: str) -> dict | None:
    """The schema of the 2xx answer Keptn declares for `METHOD /api/...{param}...`, with its definitions."""
    for prefix, name in FILES.items():
        if not path.startswith(prefix + "/"):
            continue
        document = _document(name)
        operation = document["paths"].get(path.removeprefix(prefix), {}).get(method.lower())
        if operation is None:
            return None
        for code, answer in operation.get("responses", {}).items():
            if str(code).startswith("2") and "schema" in answer:
                return {**answer["schema"], "definitions": document.get("definitions", {})}
        return {"definitions": {}}
    return None


def check(method: str, path: str, body) -> None:
    """Raise jsonschema.ValidationError when `body` does not fit Keptn's declared answer."""
    schema = answer_schema(method, path)
    assert schema is not None, f"Keptn declares no {method} {path}"
    jsonschema.Draft4Validator(schema).validate(body)
