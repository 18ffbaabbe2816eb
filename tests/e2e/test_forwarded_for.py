"""X-Forwarded-For toward the upstream: every client copy and the peer make
one field, wherever the client's copies were among its fields."""

from conftest import request


def test_xff_between_other_fields(gateway, upstream):
    g = gateway()
    r = request(g.port, path="/x", headers=[("X-Forwarded-For", "192.0.2.1"), ("X-Other", "v"),
                                            ("X-Forwarded-For", "192.0.2.2"), ("X-Last", "w")])
    assert r.status == 200
    got = upstream.wait_requests(1)[0]
    assert got.header("X-Forwarded-For") == ["192.0.2.1, 192.0.2.2, 127.0.0.1"]
    assert got.header("X-Other") == ["v"] and got.header("X-Last") == ["w"]


def test_xff_without_client_copy(gateway, upstream):
    g = gateway()
    assert request(g.port, path="/x", headers=[("X-Other", "v")]).status == 200
    assert upstream.wait_requests(1)[0].header("X-Forwarded-For") == ["127.0.0.1"]
