"""Downloads are verified and atomic: a bad or interrupted transfer never lands under the real name."""

import hashlib
import http.server
import threading

import pytest

from helpers.data import DatasetUnavailableError, fetch, load_mnist
from helpers.data import mnist

GOOD = b"the real dataset bytes " * 1000
GOOD_MD5 = hashlib.md5(GOOD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/good":
            body, length = GOOD, len(GOOD)
        elif self.path == "/wrong":
            body, length = b"an error page, not the file", None
        elif self.path == "/cut":  # promises the whole file, sends a third of it, hangs up
            body, length = GOOD[: len(GOOD) // 3], len(GOOD)
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(length or len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != "data.gz")


def test_downloads_a_missing_file_and_verifies_it(server, tmp_path):
    path = fetch("data.gz", [f"{server}/good"], tmp_path, GOOD_MD5)
    assert path.read_bytes() == GOOD
    assert _leftovers(tmp_path) == []


def test_wrong_content_is_rejected_and_never_written(server, tmp_path):
    with pytest.raises(DatasetUnavailableError, match="wrong md5"):
        fetch("data.gz", [f"{server}/wrong"], tmp_path, GOOD_MD5)
    assert not (tmp_path / "data.gz").exists()
    assert _leftovers(tmp_path) == []


def test_interrupted_download_leaves_nothing_behind(server, tmp_path):
    with pytest.raises(DatasetUnavailableError):
        fetch("data.gz", [f"{server}/cut"], tmp_path, GOOD_MD5)
    assert not (tmp_path / "data.gz").exists()
    assert _leftovers(tmp_path) == []


def test_next_mirror_is_tried_after_a_failure(server, tmp_path):
    path = fetch("data.gz", [f"{server}/wrong", f"{server}/missing", f"{server}/good"], tmp_path, GOOD_MD5)
    assert path.read_bytes() == GOOD


def test_a_corrupt_cached_file_is_replaced(server, tmp_path):
    (tmp_path / "data.gz").write_bytes(GOOD[:-1] + b"!")
    path = fetch("data.gz", [f"{server}/good"], tmp_path, GOOD_MD5)
    assert path.read_bytes() == GOOD


def test_a_corrupt_cached_file_is_never_returned_offline(tmp_path):
    (tmp_path / "data.gz").write_bytes(b"garbage")
    with pytest.raises(DatasetUnavailableError, match="corrupt"):
        fetch("data.gz", ["http://127.0.0.1:9/data.gz"], tmp_path, GOOD_MD5, timeout=5)


def test_offline_error_names_the_file_the_url_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", ["http://127.0.0.1:9/mnist/"])  # port 9: nothing listens
    with pytest.raises(DatasetUnavailableError) as error:
        load_mnist("test", data_dir=tmp_path)
    message = str(error.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert "http://127.0.0.1:9/mnist/t10k-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message
