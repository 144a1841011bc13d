"""What the service shows a browser or an attacker: headers, CORS, error bodies, the rate limit."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from api_support import api_client, serving, sqlite_settings, wait_for
from fastapi import FastAPI
from sqlalchemy import text

from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.session import Database
from asyncflow_backend.main import create_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
SECRET_PATH = "/work/srv/asyncflow/settings.py"
# What must never reach a client: tracebacks, SQL and driver names, file paths.
LEAKS = re.compile(
    r"Traceback|sqlalchemy|aiosqlite|asyncpg|SELECT |INSERT |/work/|\.py\b|"
    r"(?:/[\w.-]+){2,}\.(?:db|py|sqlite)",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("exposure"), submit_rate_limit="")


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError(f"SELECT secret FROM runs -- {SECRET_PATH}")

    return app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app) as client:
        yield client


def assert_secure(answer: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (answer.request.url, name)
    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/ready", 200),
        ("GET", "/", 200),
        ("GET", "/static/app.css", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/docs", 200),
        ("GET", "/redoc", 200),
        ("GET", "/api/v1/simulations", 200),
        ("GET", "/api/v1/simulations/not-an-id", 404),
        ("GET", "/api/v1/simulations?limit=0", 422),
        ("POST", "/api/v1/simulations", 422),
        ("PUT", "/api/v1/simulations", 405),
        ("GET", "/nowhere", 404),
        ("GET", "/runs/not-an-id", 404),
        ("GET", "/boom", 500),
    ],
)
async def test_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    answer = await client.request(method, path, content=b"{}")

    assert answer.status_code == status
    assert_secure(answer)


async def test_pages_get_the_strict_policy_and_docs_their_own(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).headers["content-security-policy"]
    docs = await client.get("/docs")

    assert "script-src 'self';" in page
    assert "style-src 'self';" in page
    policy = docs.headers["content-security-policy"]
    # The one inline script of the Swagger UI page is allowed by its hash, nothing else inline.
    inline = re.findall(r"<script>(.*?)</script>", docs.text, flags=re.DOTALL)
    assert len(inline) == 1
    assert policy.count("'sha256-") == 1
    assert "http" not in policy  # nothing from elsewhere


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_doc_pages_load_only_assets_the_service_serves(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""(?:url|spec-url)\s*:\s*['"]([^'"]+)['"]""", html)
    assert urls
    assert not [url for url in urls if "//" in url], urls  # no CDN, no font service
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    scripts = re.findall(r"""<script src=["']([^"']+)["']""", html)
    assert all(url.startswith("/docs-assets/") for url in scripts)


async def test_api_json_is_never_cached_and_images_keep_their_own_policy(
    client: httpx.AsyncClient,
) -> None:
    listed = await client.get("/api/v1/simulations")
    missing = await client.get(f"/api/v1/simulations/{'0' * 32}")
    submitted = await client.post("/api/v1/simulations", json=SMALL_SCENARIO)
    run_id = submitted.json()["id"]
    await wait_for(client, run_id, {"succeeded"})
    image = await client.get(f"/api/v1/simulations/{run_id}/plots/latency?format=svg")

    assert listed.headers["cache-control"] == "no-store"
    assert missing.headers["cache-control"] == "no-store"
    assert submitted.headers["cache-control"] == "no-store"
    assert image.headers["cache-control"] == "private, max-age=86400"
    assert_secure(image)


async def test_no_cors_unless_configured(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/api/v1/simulations",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    simple = await client.get(
        "/api/v1/simulations", headers={"Origin": "https://elsewhere.example"}
    )

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


@pytest.fixture(scope="module")
def cors_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(
        tmp_path_factory.mktemp("cors"), cors_origins="https://app.example, https://b.example"
    )


async def test_configured_origins_and_only_those_may_call(cors_settings: Settings) -> None:
    async with api_client(cors_settings) as client:
        allowed = await client.options(
            "/api/v1/simulations",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-api-key",
            },
        )
        refused = await client.options(
            "/api/v1/simulations",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        simple = await client.get("/api/v1/simulations", headers={"Origin": "https://b.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert_secure(allowed)
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "https://b.example"
    assert "location" in simple.headers["access-control-expose-headers"].lower()


async def test_an_unexpected_error_shows_nothing_internal(client: httpx.AsyncClient) -> None:
    answer = await client.get("/boom")

    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error; the incident was logged"}
    assert not LEAKS.search(answer.text), answer.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"a: [1, 2", "application/yaml"),
        (b"!!python/object/apply:os.system ['id']", "application/yaml"),
        (b'{"rqs_input": {"id": "\\ud800"}}', "application/json"),
        (b"[" * 100_000, "application/json"),
        (b'{"seed": 1e999}', "application/json"),
        (b'{"seed": ' + b"9" * 5000 + b"}", "application/json"),
        (b"<x/>", "application/xml"),
    ],
)
async def test_hostile_bodies_get_a_clean_4xx(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    for path in ("/api/v1/simulations", "/api/v1/scenarios/validate"):
        answer = await client.post(path, content=content, headers={"Content-Type": content_type})

        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
        assert not LEAKS.search(answer.text), answer.text


@pytest.fixture(scope="module")
def broken_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("broken"))


async def test_a_database_error_shows_no_sql_nor_path(broken_settings: Settings) -> None:
    settings = broken_settings
    async with api_client(settings) as client:
        submitted = await client.post("/api/v1/simulations", json=SMALL_SCENARIO)
        await wait_for(client, submitted.json()["id"], {"succeeded"})
        database = Database(settings.database_url)
        try:
            async with database.engine.begin() as connection:
                await connection.execute(text("DROP TABLE run_series"))
        finally:
            await database.dispose()

        answers = [
            await client.get(f"/api/v1/simulations/{submitted.json()['id']}/results"),
            await client.get(f"/api/v1/simulations/{submitted.json()['id']}/timeseries"),
        ]

    for answer in answers:
        assert answer.status_code in (500, 503)
        assert not LEAKS.search(answer.text), answer.text
        assert "run_series" not in answer.text
