"""The one loopback check, used by the link (CURVE beyond loopback), the web view and the daemon's config (a token
beyond loopback)."""

import pytest

from abduce.controller.errors import ConfigError
from abduce.controller.recipe.addresses import check_bind, endpoint_is_loopback, loopback, parse_address

TOKEN = "t" * 16


def test_loopback_by_address_or_by_name_in_any_case():
    for host in ("127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "[::1]", "localhost", "LOCALHOST", "LocalHost"):
        assert loopback(host), host
    for host in ("0.0.0.0", "::", "192.0.2.7", "lab-pc.example.org", "127.example.org", "localhost.example.org", ""):
        assert not loopback(host), host


def test_an_endpoint_stays_on_this_machine_by_the_same_rule():
    for endpoint in (
        "tcp://127.0.0.1:5555",
        "tcp://LOCALHOST:5555",
        "tcp://[::1]:5555",
        "tcp://127.1.2.3:1",
        "ipc:///tmp/abduce",
        "inproc://agent",
    ):
        assert endpoint_is_loopback(endpoint), endpoint
    for endpoint in ("tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.0.0.5:5555", "tcp://127.example.org:5555"):
        assert not endpoint_is_loopback(endpoint), endpoint


def test_a_token_is_required_beyond_loopback_and_a_short_one_anywhere():
    for host in ("0.0.0.0", "::", "192.0.2.7", "lab-pc.example.org"):
        with pytest.raises(ConfigError, match="beyond loopback, so it needs a token"):
            check_bind(host, None)
        check_bind(host, TOKEN)
    for host in ("127.0.0.1", "::1", "[::1]", "localhost"):
        check_bind(host, None)
    with pytest.raises(ConfigError, match="at least 16 characters"):
        check_bind("127.0.0.1", "short")
    with pytest.raises(ConfigError, match=r"\[daemon\] web_token"):
        check_bind("0.0.0.0", None, token_from="[daemon] web_token")


def test_parse_address():
    assert parse_address("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_address("[::1]:0") == ("::1", 0)
    assert parse_address("localhost:80") == ("localhost", 80)
    for bad in ("127.0.0.1", ":80", "host:99999", "http://x:1", "a b:1"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_address(bad)
