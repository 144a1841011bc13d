"""Who is calling /api/v1: API keys, and the owner each key stands for.

With `ASYNCFLOW_API_KEYS` set, every /api/v1 call must carry one of the keys
in `X-API-Key`. The service holds only the keys' SHA-256 digests (see
`Settings.api_keys`) and compares digests in constant time. A run belongs to
the key that submitted it: its `owner` is the first 16 hex digits of the
key's digest, which identifies the key without revealing it. Another key's
run answers 404, exactly like a run that does not exist, so ids leak nothing.

Without keys the API is open: every caller is anonymous and sees every run.
"""

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request, status
from fastapi.security import APIKeyHeader

from asyncflow_backend.api.dependencies import get_service
from asyncflow_backend.api.errors import ApiError
from asyncflow_backend.api.models import ErrorResponse
from asyncflow_backend.config.settings import key_digest

API_KEY_HEADER = "X-API-Key"
OWNER_ID_DIGITS = 16

# Declares the header in the OpenAPI document (and the "Authorize" button of /docs);
# whether it is required depends on the settings, so the check is done below.
_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="APIKey",
    description="One of the keys in ASYNCFLOW_API_KEYS; not needed when none is configured.",
)


class Unauthorized(ApiError):
    """401: no API key, or one the service does not know."""

    status_code = status.HTTP_401_UNAUTHORIZED

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'APIKey header="{API_KEY_HEADER}"'}


def owner_id(digest: str) -> str:
    """The owner stored on the runs of the key with this digest."""
    return digest[:OWNER_ID_DIGITS]


def find_owner(key: str | None, known_digests: tuple[str, ...]) -> str:
    """The owner id of `key`, or `Unauthorized` if it is missing or unknown.

    Every known digest is compared, in constant time, so the answer takes the
    same time whichever key (if any) matches.
    """
    if not key:
        raise Unauthorized(f"an API key is required in the {API_KEY_HEADER} header")
    digest = key_digest(key)
    found = None
    for known in known_digests:
        if hmac.compare_digest(known, digest):
            found = known
    if found is None:
        raise Unauthorized("the API key is not valid")
    return owner_id(found)


async def request_owner(
    request: Request, key: Annotated[str | None, Depends(_api_key)]
) -> str | None:
    """The caller's owner id, None when the API is open; 401 when a key is needed and wrong."""
    settings = get_service(request).settings
    if not settings.api_keys:
        return None
    return find_owner(key, settings.api_keys)


OwnerDep = Annotated[str | None, Depends(request_owner)]
"""The caller's owner id (None: the API is open, every run is visible)."""

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    status.HTTP_401_UNAUTHORIZED: {
        "model": ErrorResponse,
        "description": "API keys are configured and the X-API-Key header is missing or wrong.",
    }
}
