"""Trust: credentials stay with their origin, read-only means read-only, housekeeping keeps the
last good run, limits hold while reading, secrets are hidden, backups come back.

Each test names the item of the trust contract (docs/contracts.md, "Trust") it proves.
"""

from __future__ import annotations

import pytest

import tracer_kit as tk

from .api_server import TOKEN, running_api
from .test_api_source import RECORDS


@pytest.fixture(scope="module")
def two_origins():
    """The same API twice: on 127.0.0.1 (the user's origin) and on 127.0.0.2 (another one)."""
    with running_api(RECORDS) as home, running_api(RECORDS, host="127.0.0.2") as away:
        yield home, away


def _token_env(monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    return {"token_env": "CRM_TOKEN", "records_path": "data", "backoff": 0.05}


def test_a_redirect_to_another_origin_is_followed_without_the_token(two_origins, monkeypatch):
    home, away = two_origins
    target = away.url("/auth/customers")
    with pytest.raises(tk.IngestError, match="HTTP 401"):  # away wants the token: never given
        tk.read_table(
            home.url(f"/away-redirect?to={target}"), api=tk.ApiOptions(**_token_env(monkeypatch))
        )
    assert home.hits("/away-redirect")[-1]["auth"] == f"Bearer {TOKEN}"
    assert [h["auth"] for h in away.hits("/auth/customers")] == [None]


def test_a_redirect_on_the_same_origin_keeps_the_token(two_origins, monkeypatch):
    home, _ = two_origins
    ing = tk.read_table(
        home.url(f"/away-redirect?to={home.url('/auth/customers')}"),
        api=tk.ApiOptions(**_token_env(monkeypatch)),
    )
    assert ing.info.row_count == 10
    assert home.hits("/auth/customers")[-1]["auth"] == f"Bearer {TOKEN}"


def test_a_next_link_to_another_origin_goes_without_the_token(two_origins, monkeypatch):
    home, away = two_origins
    before = len(away.hits("/cursor"))
    ing = tk.read_table(
        home.url(f"/away-link?to={away.url('/cursor?cursor=3')}"),
        api=tk.ApiOptions(paginate="next-link", **_token_env(monkeypatch)),
    )
    assert ing.frame.collect()["customer_id"].to_list()[:4] == ["C001", "C002", "C003", "C004"]
    assert home.hits("/away-link")[-1]["auth"] == f"Bearer {TOKEN}"
    assert [h["auth"] for h in away.hits("/cursor")[before:]] == [None]


def test_same_origin_refuses_a_redirect_or_link_elsewhere_in_one_line(two_origins, monkeypatch):
    home, away = two_origins
    opts = tk.ApiOptions(same_origin=True, **_token_env(monkeypatch))
    before = len(away.log)
    with pytest.raises(tk.IngestError, match="redirects to another origin .*--same-origin"):
        tk.read_table(home.url(f"/away-redirect?to={away.url('/cursor')}"), api=opts)
    linked = tk.ApiOptions(same_origin=True, paginate="next-link", **_token_env(monkeypatch))
    with pytest.raises(tk.IngestError, match="links to another origin .*--same-origin"):
        tk.read_table(home.url(f"/away-link?to={away.url('/cursor')}"), api=linked)
    assert len(away.log) == before  # nothing reached the other origin
