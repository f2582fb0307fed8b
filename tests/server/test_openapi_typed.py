"""Every operation in /openapi.json documents a typed success body (2xx), never an empty or open object.

Clients generated from the schema (and schemathesis, which checks responses against it) only
know what is written there; a route that returns an untyped dict documents nothing.
"""
from __future__ import annotations

from typing import Any

SSE_ROUTES = {("post", "/lab/rag/ask"), ("get", "/lab/jobs/{job_id}/events"),
              ("post", "/v1/chat/completions"), ("post", "/v1/completions")}


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def untyped(spec: dict[str, Any], schema: dict[str, Any] | None) -> bool:
    """No schema, ``{}`` (anything), or an object without declared properties."""
    if not schema:
        return True
    s = resolve(spec, schema)
    if any(k in s for k in ("anyOf", "oneOf", "allOf")):
        return all(untyped(spec, sub) for k in ("anyOf", "oneOf", "allOf") for sub in s.get(k, []))
    if "type" not in s:
        return True
    return s["type"] == "object" and not s.get("properties")


def offenders(spec: dict[str, Any]) -> list[str]:
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ok = {code: r for code, r in op.get("responses", {}).items() if str(code).startswith("2")}
            if not ok:
                out.append(f"{method.upper()} {path}: no success response")
            for code, r in ok.items():
                content = r.get("content") or {}
                if not content:
                    out.append(f"{method.upper()} {path} {code}: no content")
                for media, body in content.items():
                    if untyped(spec, body.get("schema")):
                        out.append(f"{method.upper()} {path} {code} {media}: untyped {body.get('schema')!r}")
    return out


def test_every_operation_documents_a_typed_success_body(client_for):
    spec = client_for().get("/openapi.json").json()
    ops = [(m, p) for p, o in spec["paths"].items() for m in o]
    assert len(ops) >= 35  # /health*, /metrics, /v1 and the 28 operations under /lab
    assert sum(p.startswith("/lab/") for _, p in ops) == 28
    assert offenders(spec) == []


def test_streaming_routes_document_server_sent_events(client_for):
    spec = client_for().get("/openapi.json").json()
    for method, path in SSE_ROUTES:
        content = spec["paths"][path][method]["responses"]["200"]["content"]
        assert "text/event-stream" in content, (method, path)
    events = spec["paths"]["/lab/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert set(events) == {"text/event-stream"}  # a stream only: no JSON body to promise
    assert spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"]["schema"] == \
        {"type": "string"}


def test_the_walk_finds_untyped_bodies():
    spec = {"components": {"schemas": {"Open": {"type": "object", "additionalProperties": True},
                                        "Typed": {"type": "object", "properties": {"id": {"type": "string"}}}}},
            "paths": {"/a": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}},
                      "/b": {"post": {"responses": {"201": {"content": {
                          "application/json": {"schema": {"$ref": "#/components/schemas/Open"}}}}}}},
                      "/c": {"get": {"responses": {"422": {"description": "bad"}}}},
                      "/d": {"get": {"responses": {"200": {"content": {"text/plain": {}}}}}},
                      "/e": {"get": {"responses": {"200": {"content": {
                          "application/json": {"schema": {"$ref": "#/components/schemas/Typed"}}}}}}}}}
    found = offenders(spec)
    assert [f.split(":")[0] for f in found] == ["GET /a 200 application/json", "POST /b 201 application/json",
                                                "GET /c", "GET /d 200 text/plain"]
