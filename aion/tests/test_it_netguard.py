"""SSRF guard: forbidden destinations are refused; allowed ones are pinned and never redirected."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aion.netguard import UnsafeDestination, check_url, guarded_request


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/x",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
        "http:///nohost",
    ],
)
def test_forbidden_destinations_are_refused(url):
    with pytest.raises(UnsafeDestination):
        check_url(url, allow_private=False)


def test_metadata_is_refused_even_with_private_networks_allowed():
    with pytest.raises(UnsafeDestination):
        check_url("http://169.254.169.254/", allow_private=True)


def test_loopback_is_allowed_only_when_private_networks_are():
    assert check_url("http://127.0.0.1:9/", allow_private=True).address == "127.0.0.1"


class _Redirector(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_redirects_are_not_followed_and_host_header_is_kept():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://localhost:{server.server_port}/hook"
        response = guarded_request("GET", url, allow_private=True, timeout=5)
        assert response.status_code == 302
        assert response.request.headers["Host"] == f"localhost:{server.server_port}"
    finally:
        server.shutdown()
