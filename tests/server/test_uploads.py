"""Upload attacks: path traversal names, oversized files, wrong types by content, overwriting."""
from __future__ import annotations

import io
import zipfile

import pytest

from llmlab.server.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from llmlab.server.uploads import UploadStore, safe_stem


def docx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def upload(c, name: str, data: bytes):
    return c.post("/lab/uploads", files=[("files", (name, data, "application/octet-stream"))])


@pytest.mark.parametrize("name", ["../../etc/passwd.txt", "..\\..\\windows\\x.txt", "/etc/cron.d/evil.md",
                                  "....//....//a.txt", ".hidden.txt", "a\x00b.txt", "빈칸 있는 이름.txt"])
def test_traversal_names_land_inside_the_upload_folder(client_for, llmlab_home, name):
    c = client_for()
    r = upload(c, name, "안녕하세요, 문서입니다.".encode())
    assert r.status_code == 201, r.text
    up = r.json()["uploads"][0]
    files = list((llmlab_home / "uploads").iterdir())
    assert len(files) == 1 and files[0].name.startswith(up["id"] + "-") and files[0].suffix in (".txt", ".md")
    assert files[0].resolve().parent == (llmlab_home / "uploads").resolve()
    assert ".." not in files[0].name and "/" not in up["name"] and "path" not in up


def test_a_part_without_a_file_name_is_not_a_file(client_for):
    assert upload(client_for(), "", b"text").status_code == 422


def test_same_name_twice_never_overwrites(client_for, llmlab_home):
    c = client_for()
    a = upload(c, "notes.md", b"# one").json()["uploads"][0]
    b = upload(c, "notes.md", b"# two").json()["uploads"][0]
    assert a["id"] != b["id"]
    assert sorted(p.read_bytes() for p in (llmlab_home / "uploads").iterdir()) == [b"# one", b"# two"]


def test_oversized_upload_is_413(client_for, llmlab_home):
    c = client_for(max_upload_bytes=2048)
    r = upload(c, "big.txt", b"a" * 4096)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = upload(c, "huge.txt", b"a" * 600_000)  # over the body limit itself: refused before reading
    assert r.status_code == 413
    assert not any((llmlab_home / "uploads").glob("*")) if (llmlab_home / "uploads").exists() else True


@pytest.mark.parametrize("name, data, why", [
    ("report.pdf", "그냥 텍스트".encode(), "the name says pdf but the content is text"),
    ("notes.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "the name says txt but the content is pdf"),
    ("tool.exe", b"MZ\x90\x00\x03", "not accepted"),
    ("data.txt", bytes(range(256)) * 4, "binary"),
    ("doc.docx", b"PK\x03\x04not a zip", "damaged ZIP"),
    ("rows.jsonl", b'{"a": 1}\nnot json\n', "line 2 is not JSON"),
    ("image.txt", b"\x89PNG\r\n\x1a\n" + bytes(200), "binary"),
])
def test_wrong_type_by_content_is_415(client_for, name, data, why):
    c = client_for()
    r = upload(c, name, data)
    assert r.status_code == 415, r.text
    assert why in r.json()["error"]["message"]


def test_real_types_are_accepted(client_for):
    c = client_for()
    for name, data, kind in [("a.docx", docx_bytes(), "docx"), ("b.pdf", b"%PDF-1.4\n...", "pdf"),
                             ("c.jsonl", b'{"text": "x"}\n', "jsonl"), ("d.html", b"<html><p>hi</p></html>", "html"),
                             ("e.txt", "한글 CP949".encode("cp949"), "txt"), ("README", b"plain", "txt")]:
        r = upload(c, name, data)
        assert r.status_code == 201 and r.json()["uploads"][0]["type"] == kind, (name, r.text)
    assert len(c.get("/lab/uploads").json()["uploads"]) == 6


def test_type_allow_list_is_enforced(client_for):
    c = client_for(upload_types=["txt", "md"])
    assert upload(c, "b.pdf", b"%PDF-1.4\n...").status_code == 415
    assert upload(c, "x", b"%PDF-1.4\n...").status_code == 415  # detected by content, not by name


def test_store_unit(tmp_path):
    store = UploadStore(tmp_path, max_bytes=10, allowed=["txt"])
    with pytest.raises(PayloadTooLargeError):
        store.store(io.BytesIO(b"x" * 11), "a.txt")
    with pytest.raises(UnsupportedMediaTypeError):
        store.store(io.BytesIO(b"%PDF-1.4"), "a")
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind
    assert safe_stem("../../x/../y.tar.gz") == "y_tar" and safe_stem("...") == "upload"
    with pytest.raises(Exception):
        store.path("../../etc")


def _multipart(n: int, boundary: str = "XX"):
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n'
           'Content-Type: text/plain\r\n\r\n').encode()
    for i in range(0, n, 65536):
        yield b"a" * min(65536, n - i)
    yield f"\r\n--{boundary}--\r\n".encode()


def test_the_web_uis_upload_route_keeps_the_servers_limits(llmlab_home, monkeypatch):
    """Gradio's own /gradio_api/upload: the server's max_upload_bytes, and 4xx (never 500) over it."""
    pytest.importorskip("gradio")
    from fastapi.testclient import TestClient

    from llmlab.server.app import BodyLimit

    from .conftest import make_app

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(llmlab_home / "webui" / "uploads"))  # this test's folder
    c = TestClient(make_app(ui=True, max_upload_bytes=2048), raise_server_exceptions=False)
    headers = {"content-type": "multipart/form-data; boundary=XX"}
    ok = c.post("/gradio_api/upload", content=b"".join(_multipart(1000)), headers=headers)
    assert ok.status_code == 200 and ok.json()[0].endswith("a.txt")
    for n in (4096, 100_000):  # over the upload limit, under the body limit: Gradio's own check
        for body in (b"".join(_multipart(n)), _multipart(n)):  # with Content-Length, then chunked
            r = c.post("/gradio_api/upload", content=body, headers=headers)
            assert r.status_code == 413, (n, r.status_code, r.text[:200])
    for body in (b"".join(_multipart(600_000)), _multipart(600_000)):  # over the body limit too
        r = c.post("/gradio_api/upload", content=body, headers=headers)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text[:200]
    assert BodyLimit(None, c.app.state.lab.server).limit_for("/ui/gradio_api/upload") == 2048 + 256 * 1024
    kept = [p for p in (llmlab_home / "webui" / "uploads").rglob("*") if p.is_file()]
    assert [p.stat().st_size for p in kept] == [1000]  # nothing over the limit stayed on disk
