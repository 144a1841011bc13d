"""API keys: who may call /api/v1, and each key sees and cancels only its own runs."""

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_support import api_client, sqlite_settings, wait_for
from sqlalchemy import select

from asyncflow_backend.api.auth import find_owner
from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.config.settings import Settings, key_digest
from asyncflow_backend.db.models import Run
from asyncflow_backend.db.session import Database

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALICE = "alice-key-7c1e0f4b9a2d"
BOB = "bob-key-03e8d2a6c5f1"
ALICE_HEADERS = {"X-API-Key": ALICE}
BOB_HEADERS = {"X-API-Key": BOB}
UNKNOWN_ID = "0" * 32


def run_routes(run_id: str) -> list[tuple[str, str]]:
    """Every operation on one run."""
    base = f"/api/v1/simulations/{run_id}"
    return [
        ("GET", base),
        ("GET", f"{base}/results"),
        ("GET", f"{base}/timeseries"),
        ("GET", f"{base}/scenario"),
        ("GET", f"{base}/plots/dashboard"),
        ("POST", f"{base}/cancel"),
        ("DELETE", base),
    ]


API_ROUTES = [
    ("GET", "/api/v1/simulations"),
    ("POST", "/api/v1/simulations"),
    ("POST", "/api/v1/scenarios/validate"),
    *run_routes(UNKNOWN_ID),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("auth"), api_keys=f"{ALICE}, {BOB}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def alices_run(client: httpx.AsyncClient) -> dict[str, Any]:
    """A run Alice submitted, run to success."""
    answer = await client.post("/api/v1/simulations", json=SMALL_SCENARIO, headers=ALICE_HEADERS)
    assert answer.status_code == 202, answer.text
    client.headers.update(ALICE_HEADERS)
    try:
        return await wait_for(client, answer.json()["id"], {"succeeded"})
    finally:
        del client.headers["X-API-Key"]


async def test_only_digests_of_the_keys_are_kept(settings: Settings) -> None:
    assert settings.api_keys == (key_digest(ALICE), key_digest(BOB))
    assert ALICE not in repr(settings)
    assert ALICE not in settings.model_dump_json()


async def test_a_key_is_recognised_by_its_digest_only() -> None:
    digests = (key_digest("one"), key_digest("two"))
    assert find_owner("two", digests) == key_digest("two")[:16]


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
@pytest.mark.parametrize("key", [None, "", "not-a-key", ALICE + " ", ALICE.upper()])
async def test_every_api_call_needs_a_known_key(
    client: httpx.AsyncClient, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key}

    answer = await client.request(method, path, json=SMALL_SCENARIO, headers=headers)

    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == 'APIKey header="X-API-Key"'
    detail = answer.json()["detail"]
    assert "API key" in detail
    if key:
        assert key.strip() not in answer.text


async def test_probes_pages_and_the_api_description_need_no_key(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/ready", "/", "/openapi.json", "/docs", "/static/common.js"):
        assert (await client.get(path)).status_code == 200, path


async def test_a_key_sees_its_own_runs(
    client: httpx.AsyncClient, alices_run: dict[str, Any]
) -> None:
    run_id = alices_run["id"]
    own = await client.get(f"/api/v1/simulations/{run_id}", headers=ALICE_HEADERS)
    results = await client.get(f"/api/v1/simulations/{run_id}/results", headers=ALICE_HEADERS)
    listed = await client.get("/api/v1/simulations", headers=ALICE_HEADERS)

    assert own.status_code == 200
    assert results.status_code == 200
    assert run_id in [item["id"] for item in listed.json()["items"]]


@pytest.mark.parametrize("route", range(len(run_routes(UNKNOWN_ID))))
async def test_another_keys_run_is_not_found_exactly_like_a_missing_run(
    client: httpx.AsyncClient, alices_run: dict[str, Any], route: int
) -> None:
    method, path = run_routes(alices_run["id"])[route]
    missing_method, missing_path = run_routes(UNKNOWN_ID)[route]

    answer = await client.request(method, path, headers=BOB_HEADERS)
    missing = await client.request(missing_method, missing_path, headers=BOB_HEADERS)

    assert answer.status_code == missing.status_code == 404
    assert answer.json()["detail"].replace(alices_run["id"], UNKNOWN_ID) == missing.json()["detail"]
    assert alices_run["id"] not in str(answer.headers)


async def test_lists_hold_only_the_callers_runs(
    client: httpx.AsyncClient, alices_run: dict[str, Any]
) -> None:
    bobs = await client.post("/api/v1/simulations", json=SMALL_SCENARIO, headers=BOB_HEADERS)
    assert bobs.status_code == 202

    alice_ids = {
        item["id"]
        for item in (await client.get("/api/v1/simulations", headers=ALICE_HEADERS)).json()["items"]
    }
    bob_page = (await client.get("/api/v1/simulations", headers=BOB_HEADERS)).json()

    assert alices_run["id"] in alice_ids
    assert bobs.json()["id"] not in alice_ids
    assert [item["id"] for item in bob_page["items"]] == [bobs.json()["id"]]
    assert bob_page["total"] == 1


async def test_bob_cannot_cancel_alices_queued_run_but_alice_can(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    slow = {**SMALL_SCENARIO, "sim_settings": {"total_simulation_time": 3_000}}
    submitted = await client.post("/api/v1/simulations", json=slow, headers=ALICE_HEADERS)
    run_id = submitted.json()["id"]

    refused = await client.post(f"/api/v1/simulations/{run_id}/cancel", headers=BOB_HEADERS)
    still = await client.get(f"/api/v1/simulations/{run_id}", headers=ALICE_HEADERS)
    assert refused.status_code == 404
    assert still.json()["cancel_requested"] is False

    cancelled = await client.post(f"/api/v1/simulations/{run_id}/cancel", headers=ALICE_HEADERS)
    assert cancelled.status_code in (200, 202)
    client.headers.update(ALICE_HEADERS)
    try:
        await wait_for(client, run_id, {"cancelled"})
    finally:
        del client.headers["X-API-Key"]


async def test_runs_store_a_key_id_never_the_key(
    settings: Settings, alices_run: dict[str, Any]
) -> None:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            owner = await session.scalar(select(Run.owner).where(Run.id == alices_run["id"]))
    finally:
        await database.dispose()

    assert owner == key_digest(ALICE)[:16]
    assert ALICE not in str(owner)


async def test_keys_are_never_logged(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with api_client(settings) as client:
        await client.get("/api/v1/simulations", headers=ALICE_HEADERS)
        await client.get("/api/v1/simulations", headers={"X-API-Key": "wrong-" + BOB})
        await client.post("/api/v1/simulations", json={"bad": 1}, headers=BOB_HEADERS)
        await client.get(f"/api/v1/simulations/{UNKNOWN_ID}", headers=ALICE_HEADERS)

    assert caplog.records, "the service logged nothing at all: the check would be empty"
    for secret in (ALICE, BOB, key_digest(ALICE), key_digest(BOB)):
        assert secret not in caplog.text
    assert "API is open" not in caplog.text


@pytest.fixture(scope="module")
def open_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("open"))


async def test_an_open_api_warns_at_start(
    open_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with api_client(open_settings) as client:
        listed = await client.get("/api/v1/simulations")

    assert listed.status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ASYNCFLOW_API_KEYS" in r.getMessage() for r in warnings)


async def test_the_page_asks_for_a_key_and_reveals_no_run(
    client: httpx.AsyncClient, alices_run: dict[str, Any]
) -> None:
    index = await client.get("/")
    run_page = await client.get(f"/runs/{alices_run['id']}")
    missing_page = await client.get(f"/runs/{UNKNOWN_ID}")

    assert 'id="api-key-form"' in index.text
    # Without the key the server cannot tell whose run it is: both pages are the same shell,
    # and the page's scripts read the run with the key pasted in the page.
    assert run_page.status_code == missing_page.status_code == 200
    run_id = alices_run["id"]
    same_shell = run_page.text.replace(run_id, UNKNOWN_ID).replace(run_id[:8], UNKNOWN_ID[:8])
    assert same_shell == missing_page.text  # so nothing of the run's scenario is in it


async def test_an_open_page_has_no_key_form(open_settings: Settings) -> None:
    async with api_client(open_settings) as client:
        index = await client.get("/")

    assert index.status_code == 200
    assert "api-key-form" not in index.text


async def test_the_api_description_names_the_key_only_when_one_is_needed(
    client: httpx.AsyncClient, open_settings: Settings
) -> None:
    keyed = (await client.get("/openapi.json")).json()
    async with api_client(open_settings) as open_client:
        public = (await open_client.get("/openapi.json")).json()

    scheme = keyed["components"]["securitySchemes"]["APIKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    for path, item in keyed["paths"].items():
        for operation in item.values():
            needs_key = path.startswith("/api/v1/")
            assert ("401" in operation["responses"]) is needs_key, path
            assert bool(operation.get("security")) is needs_key, path
    assert "securitySchemes" not in public.get("components", {})
    assert all(
        "401" not in op["responses"] for item in public["paths"].values() for op in item.values()
    )
