"""schemathesis against /openapi.json: no server errors (5xx), no response that breaks the schema.

It runs against the ASGI app on the scripted fake backend, a few examples per operation
so the suite stays fast. Excluded, because they start genuinely long-running work that
outlives a test: ``POST /lab/models/pull`` (downloads from the Hub) and
``POST /lab/finetune/jobs`` (trains a model).
"""
from __future__ import annotations

import tempfile

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from llmlab.config import load_settings  # noqa: E402
from llmlab.server.app import create_app  # noqa: E402
from llmlab.server.settings import ServerSettings  # noqa: E402

from .conftest import fake_pool  # noqa: E402

KEY = "sk-schemathesis-key"
LONG_RUNNING = ["/lab/models/pull", "/lab/finetune/jobs"]


def _app():
    # built at import (schemathesis generates one test per operation), with a home of its own
    home = tempfile.mkdtemp(prefix="llmlab-schemathesis-")
    return create_app(ServerSettings(ui=False, api_keys=[KEY], embedding_models=["hash"], rag_embedder="hash",
                                     max_tokens_ceiling=64,
                                     max_upload_bytes=64 * 1024),
                      core=load_settings(home=home), pool=fake_pool(["네, 알겠습니다."]))


# /openapi.json is behind the key gate like every route
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(), headers={"Authorization": f"Bearer {KEY}"}).exclude(
    path=LONG_RUNNING)


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms(case):
    # positive_data_acceptance is left out: a schema-valid request may still name a model, collection or
    # upload that does not exist, or ask for more tokens than the ceiling — a 4xx is the right answer
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"},
                           excluded_checks=[schemathesis.checks.positive_data_acceptance])
