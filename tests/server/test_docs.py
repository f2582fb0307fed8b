"""/docs is served from the installed package, with no URL outside this server."""
from __future__ import annotations

import re

from fastapi.testclient import TestClient

from .conftest import make_app


def test_docs_page_and_its_assets_are_local():
    with TestClient(make_app()) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
        assert urls and not [u for u in urls if u.startswith(("http://", "https://", "//"))], urls
        for u in urls:
            if u.startswith("/"):
                assert c.get(u).status_code == 200, u
        assert c.get("/redoc").status_code == 200 and "cdn" not in c.get("/redoc").text
        assert c.get("/docs-assets/swagger-ui-bundle.js").headers["content-type"].startswith(("application/javascript",
                                                                                              "text/javascript"))
