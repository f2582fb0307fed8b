"""The dataset catalog: the shipped one parses, every Hub set is pinned, restricted licences are
recognised, and a malformed entry is refused with a message naming it."""
from __future__ import annotations

import pytest

from llmlab.datasets.catalog import BUNDLED_LICENCE, COMMIT_RE, find, load_catalog, parse_catalog
from llmlab.errors import ConfigError, DatasetNotFoundError


def test_the_shipped_catalog_has_bundled_and_pinned_hub_sets():
    entries = load_catalog()
    bundled = [e for e in entries if e.bundled]
    hub = [e for e in entries if not e.bundled]
    assert {e.kind for e in bundled} >= {"rag", "sft", "summarize", "translate"}
    assert all(e.licence == BUNDLED_LICENCE for e in bundled)
    assert {e.kind for e in hub} >= {"rag", "summarize", "translate"}
    for e in hub:
        assert COMMIT_RE.match(e.revision or ""), e.name
        assert e.licence and e.licence_url.startswith("https://") and e.source and e.files
        assert e.download_size and e.download_size > 0


def test_no_derivatives_and_non_commercial_need_acceptance():
    assert find("korquad-v1").needs_acceptance  # CC BY-ND
    assert not find("naver-news-summ").needs_acceptance  # Apache-2.0
    raw = {"name": "x", "kind": "sft", "repo": "o/x", "revision": "c" * 40, "files": [{"file": "a.jsonl"}],
           "licence": "CC-BY-NC-SA-4.0"}
    [e] = parse_catalog({"hub": [raw]})
    assert e.needs_acceptance
    [e] = parse_catalog({"hub": [{**raw, "licence": "CC-BY-SA-4.0"}]})
    assert not e.needs_acceptance
    [e] = parse_catalog({"hub": [{**raw, "licence": "MIT", "gated": True}]})
    assert e.needs_acceptance


@pytest.mark.parametrize("bad,message", [
    ({"revision": "main"}, "pinned 40-hex commit"),
    ({"files": [{"file": "a", "sha256": "xyz"}]}, "sha256 is not 64 hex"),
    ({"kind": "poetry"}, "kind 'poetry'"),
])
def test_malformed_entries_are_refused(bad, message):
    raw = {"name": "x", "kind": "sft", "repo": "o/x", "revision": "c" * 40, "files": [{"file": "a.jsonl"}],
           "licence": "MIT", **bad}
    with pytest.raises(ConfigError, match=message):
        parse_catalog({"hub": [raw]})


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DatasetNotFoundError) as e:
        find("no-such-set")
    assert all(x.name in str(e.value) for x in load_catalog())
