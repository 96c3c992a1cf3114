"""The SSRF guard (chatsupport.net): refused destinations are refused before any connection is opened.

Names resolve through an injected resolver (a table; an unknown name is an error, so no test ever asks real DNS)
and connections go through a counting connector that records every address it is asked to reach. The only
server that is ever connected to is the test's own on 127.0.0.1.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from chatsupport.net.addresses import Allowlist, Policy, blocked_reason, parse_ip_literal
from chatsupport.net.errors import FetchTimeout, OutboundError, OutboundRefused, ResponseTooLarge, TooManyRedirects
from chatsupport.net.outbound import USER_AGENT, OutboundClient, direct_connect
from local_site import LocalSite, Page

DNS = {
    "evil.test": ["10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "metadata.google.internal": ["169.254.169.254"],
    "v6-metadata.test": ["fd00:ec2::254"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.5"],
    "cgnat.test": ["100.64.3.4"],
    "localhost": ["127.0.0.1", "::1"],
    "site.test": ["127.0.0.1"],
    "public.test": ["93.184.216.34"],
}


class Network:
    """The injected resolver and connector: every lookup and connect attempt is recorded."""

    def __init__(self, dns: dict[str, list[str]] | None = None):
        self.dns = dict(dns or DNS)
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []

    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.dns:
            raise OSError(f"test resolver: no such host {host}")
        return self.dns[host]

    def connect(self, ip: str, port: int, timeout: float | None, options: Any) -> Any:
        self.connects.append((ip, port))
        assert ip == "127.0.0.1", f"the guard tried to connect to {ip}"
        return direct_connect(ip, port, timeout, options)

    def client(self, allowlist: tuple[str, ...] = (), **options: Any) -> OutboundClient:
        return OutboundClient(allowlist, resolver=self.resolve, connector=self.connect, **options)


@pytest.fixture
def net() -> Network:
    return Network()


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as server:
        server.pages["/ok"] = Page("hello", content_type="text/plain")
        yield server


REFUSED = [
    "http://127.0.0.1/", "http://127.0.0.1:8080/admin", "http://2130706433/", "http://0x7f.1/",
    "http://0177.0.0.1/", "http://127.1/", "http://0x7f000001/", "http://017700000001/", "http://[::1]/",
    "http://[::ffff:10.0.0.5]/", "http://[::ffff:169.254.169.254]/", "http://[::ffff:7f00:1]/",
    "http://[64:ff9b::a00:5]/", "http://[2002:a00:5::1]/", "http://[::a00:5]/", "http://[fe80::1]/",
    "http://[fd00:ec2::254]/latest/meta-data/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/",
    "http://172.16.0.1/", "http://192.168.1.1/", "http://100.64.0.1/", "http://224.0.0.1/", "http://0.0.0.0/",
    "http://255.255.255.255/", "http://240.0.0.1/", "http://198.18.0.1/", "http://[ff02::1]/",
    "http://evil.test/", "http://metadata.test/", "http://metadata.google.internal/computeMetadata/v1/",
    "http://v6-metadata.test/", "http://mapped.test/", "http://mixed.test/", "http://cgnat.test/",
    "https://localhost/", "http://LOCALHOST./", "http://1.2.3.4.5/", "http://999.1.1.1/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_before_any_connection(net: Network, url: str) -> None:
    with net.client() as client, pytest.raises(OutboundRefused) as refused:
        client.get(url)
    assert refused.value.code == "url_not_allowed"
    assert net.connects == []


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "gopher://127.0.0.1:70/",
                                 "dict://127.0.0.1:11211/", "/relative/path", "http://user:secret@public.test/",
                                 "http://[fe80::1%25eth0]/", "http:///nohost"])
def test_only_plain_http_urls(net: Network, url: str) -> None:
    with net.client(("127.0.0.1",)) as client, pytest.raises(OutboundRefused):
        client.get(url)
    assert net.connects == [] and net.lookups == []


def test_the_refusal_names_the_address_and_the_setting(net: Network) -> None:
    with net.client() as client, pytest.raises(OutboundRefused) as refused:
        client.get("http://metadata.test/latest/")
    assert refused.value.address == "169.254.169.254"
    assert "cloud metadata" in str(refused.value) and "CHATSUPPORT_OUTBOUND_ALLOWLIST" in str(refused.value)


def test_allow_listed_loopback_is_reached_with_our_user_agent(net: Network, site: LocalSite) -> None:
    with net.client(("127.0.0.1",)) as client:
        response = client.get(f"{site.url}/ok")
    assert response.status == 200 and response.content == b"hello"
    assert net.connects == [("127.0.0.1", site.port)]
    assert site.hits[0].headers["user-agent"] == USER_AGENT
    assert site.hits[0].headers["host"] == f"127.0.0.1:{site.port}"


@pytest.mark.parametrize("allowlist", [("site.test",), ("127.0.0.0/8",), ("127.0.0.1",)])
def test_a_name_is_resolved_once_and_the_vetted_ip_is_used(site: LocalSite, allowlist: tuple[str, ...]) -> None:
    """DNS rebinding: the second answer would be private, but nothing asks a second time."""
    answers = iter([["127.0.0.1"], ["10.0.0.5"]])
    net = Network()
    net.resolve = lambda host, port: (net.lookups.append(host), next(answers))[1]  # type: ignore[method-assign]
    with net.client(allowlist) as client:
        response = client.get(f"http://site.test:{site.port}/ok")
    assert response.status == 200
    assert net.lookups == ["site.test"] and net.connects == [("127.0.0.1", site.port)]
    assert site.hits[0].headers["host"] == f"site.test:{site.port}"  # the name, not the pinned IP


def test_a_redirect_to_a_private_address_is_refused(net: Network, site: LocalSite) -> None:
    site.pages["/to-private"] = Page(status=302, headers={"Location": "http://10.0.0.5/internal"})
    site.pages["/to-metadata"] = Page(status=301, headers={"Location": "http://metadata.test/latest/meta-data/"})
    site.pages["/to-decimal"] = Page(status=307, headers={"Location": "http://2852039166/"})  # 169.254.169.254
    with net.client(("127.0.0.1",)) as client:
        for path in ("/to-private", "/to-metadata", "/to-decimal"):
            with pytest.raises(OutboundRefused):
                client.get(f"{site.url}{path}")
    assert {ip for ip, _ in net.connects} == {"127.0.0.1"}
    assert site.paths() == ["/to-private", "/to-metadata", "/to-decimal"]


def test_redirects_are_followed_and_limited(net: Network, site: LocalSite) -> None:
    site.pages["/old"] = Page(status=301, headers={"Location": "/ok"})
    site.pages["/loop-a"] = Page(status=302, headers={"Location": "/loop-b"})
    site.pages["/loop-b"] = Page(status=302, headers={"Location": "/loop-a"})
    with net.client(("127.0.0.1",), max_redirects=3) as client:
        moved = client.get(f"{site.url}/old")
        assert moved.url == f"{site.url}/ok" and moved.redirects == [f"{site.url}/old"]
        with pytest.raises(TooManyRedirects) as loop:
            client.get(f"{site.url}/loop-a")
    assert loop.value.code == "too_many_redirects"
    assert site.paths().count("/loop-a") + site.paths().count("/loop-b") == 4


@pytest.mark.parametrize("page", [
    Page(b"x" * 300_000),                                    # Content-Length says so
    Page(b"x" * 300_000, chunked=True),                      # no length: counted while streaming
    Page(b"\0" * 20_000_000, gzip=True),                     # 20 MB of zeros in ~20 kB: a small bomb
], ids=["declared", "streamed", "gzip-bomb"])
def test_bodies_stop_at_the_size_limit(net: Network, site: LocalSite, page: Page) -> None:
    site.pages["/big"] = page
    with net.client(("127.0.0.1",), max_bytes=100_000) as client, pytest.raises(ResponseTooLarge) as big:
        client.get(f"{site.url}/big")
    assert big.value.code == "too_large"


def test_gzip_bodies_are_decoded(net: Network, site: LocalSite) -> None:
    site.pages["/zipped"] = Page("compressed text " * 100, gzip=True)
    with net.client(("127.0.0.1",)) as client:
        assert client.get(f"{site.url}/zipped").content == b"compressed text " * 100


def test_slow_servers_time_out(net: Network, site: LocalSite) -> None:
    site.pages["/slow"] = Page("late", delay=2)
    with net.client(("127.0.0.1",), timeout=0.3) as client, pytest.raises(FetchTimeout) as slow:
        client.get(f"{site.url}/slow")
    assert slow.value.code == "timeout"


def test_metadata_needs_its_exact_address_in_the_allow_list() -> None:
    net = Network()
    broad = Policy(Allowlist.parse(["169.254.0.0/16", "metadata.test"]), net.resolve)
    assert [str(a) for a in broad.vet("169.254.10.10", 80)] == ["169.254.10.10"]
    with pytest.raises(OutboundRefused):
        broad.vet("169.254.169.254", 80)
    with pytest.raises(OutboundRefused):
        broad.vet("metadata.test", 80)
    exact = Policy(Allowlist.parse(["169.254.169.254"]), net.resolve)
    assert [str(a) for a in exact.vet("169.254.169.254", 80)] == ["169.254.169.254"]
    assert net.connects == []


def test_public_addresses_pass() -> None:
    net = Network()
    policy = Policy(Allowlist(), net.resolve)
    assert [str(a) for a in policy.vet("public.test", 443)] == ["93.184.216.34"]
    assert [str(a) for a in policy.vet("[2606:4700:4700::1111]", 443)] == ["2606:4700:4700::1111"]
    assert blocked_reason(parse_ip_literal("8.8.8.8")) is None  # type: ignore[arg-type]


def test_unresolvable_names_fail_cleanly(net: Network) -> None:
    with net.client() as client, pytest.raises(Exception) as failed:
        client.get("http://nowhere.test/")
    assert getattr(failed.value, "code", None) == "dns_failed"
    assert net.connects == []


def test_https_to_a_pinned_ip_still_checks_the_certificate_for_the_name(net: Network, tmp_path: Path) -> None:
    """The connection goes to the vetted IP, but SNI and certificate verification use the URL's host name."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=site.test", "-addext", "subjectAltName=DNS:site.test", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    trust = ssl.create_default_context(cafile=str(cert))
    with LocalSite(tls=server_tls) as site:
        site.pages["/ok"] = Page("secure", content_type="text/plain")
        with net.client(("site.test",), ssl_context=trust) as client:
            assert client.get(f"https://site.test:{site.port}/ok").content == b"secure"
        net.dns["other.test"] = ["127.0.0.1"]  # same IP, a name the certificate does not cover
        with net.client(("other.test",), ssl_context=trust) as client, pytest.raises(OutboundError) as mismatch:
            client.get(f"https://other.test:{site.port}/ok")
    assert "certificate" in str(mismatch.value).lower() or "hostname" in str(mismatch.value).lower()
    assert net.connects == [("127.0.0.1", site.port), ("127.0.0.1", site.port)]
