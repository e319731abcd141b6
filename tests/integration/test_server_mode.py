"""Server mode: ``https://`` with TLS options reaches a server through clickhouse-connect, and no
secret appears in errors or output. The server is a TLS endpoint that answers every request
as a ClickHouse server refusing the login would (no ClickHouse server runs on this machine)."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from sinks.clickhouse import connect
from sinks.errors import ClickHouseError
from sinks.settings import ClickHouseSettings

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Pa55word"


class Refusing(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def _refuse(self) -> None:
        Refusing.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = (
            b"Code: 516. DB::Exception: pulse-test: Authentication failed. (AUTHENTICATION_FAILED)"
        )
        self.send_response(500)
        self.send_header("X-ClickHouse-Exception-Code", "516")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield f"https://pulse:{SECRET}@127.0.0.1:{server.server_address[1]}/", str(ca_file)
    server.shutdown()


def test_an_untrusted_certificate_is_refused_without_leaking_the_password(tls_server):
    url, _ = tls_server
    settings = ClickHouseSettings(clickhouse_url=url)
    with pytest.raises(ClickHouseError) as info:
        connect(url, **settings.connect_options())
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "SSL" in str(info.value)
    assert SECRET not in str(info.value) and "pulse:***@127.0.0.1" in str(info.value)


def test_the_ca_option_reaches_the_server_over_tls(tls_server):
    url, ca_file = tls_server
    Refusing.seen.clear()
    settings = ClickHouseSettings(clickhouse_url=url, clickhouse_ca_cert=ca_file)
    with pytest.raises(ClickHouseError) as info:
        connect(url, **settings.connect_options())
    assert info.value.code == 516 and info.value.name == "AUTHENTICATION_FAILED"
    assert Refusing.seen, "the request went through the TLS handshake"
    assert SECRET not in str(info.value)


def test_the_password_from_the_environment_wins_and_is_never_printed(tls_server, tmp_path):
    url, ca_file = tls_server
    env = {
        "PATH": "/usr/bin:/bin",
        "PULSE_CLICKHOUSE_URL": url.replace(SECRET, "url-password"),
        "PULSE_CLICKHOUSE_PASSWORD": SECRET,
        "PULSE_CLICKHOUSE_CA_CERT": ca_file,
    }
    Refusing.seen.clear()
    out = subprocess.run(
        [sys.executable, "-m", "sinks", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    printed = out.stdout + out.stderr
    assert "AUTHENTICATION_FAILED" in printed
    assert SECRET not in printed and "url-password" not in printed
    assert Refusing.seen  # it did connect
