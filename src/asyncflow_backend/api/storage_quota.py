"""The per-key storage quota (`ASYNCFLOW_STORAGE_QUOTA_MB`), checked before a submission."""

from typing import Annotated, Any

from fastapi import Depends, status

from asyncflow_backend.api.auth import OwnerDep
from asyncflow_backend.api.dependencies import ServiceDep
from asyncflow_backend.api.errors import ApiError
from asyncflow_backend.api.models import ErrorResponse
from asyncflow_backend.db.storage import Storage

MB = 1_000_000


class StorageQuotaReached(ApiError):
    """403: the caller's runs and experiments already store their quota."""

    status_code = status.HTTP_403_FORBIDDEN


async def check_storage_quota(service: ServiceDep, owner: OwnerDep) -> None:
    """Dependency of the submitting routes: refuses the caller whose stored data is at its quota.

    What is stored is what its runs and experiments count in `stored_bytes`
    (see `db.storage`); all of it, when the API is open and there are no keys.
    """
    quota_mb = service.settings.storage_quota_mb
    if quota_mb <= 0:
        return
    async with service.database.autocommit() as session:
        used = await Storage(session).used_bytes(owner)
    if used >= quota_mb * MB:
        raise StorageQuotaReached(
            f"the runs and experiments of this API key store {used / MB:.1f} MB, its quota is "
            f"{quota_mb:g} MB (ASYNCFLOW_STORAGE_QUOTA_MB): delete some "
            "(DELETE /api/v1/simulations/{id} or /api/v1/experiments/{id}) to submit more"
        )


StorageQuota = Annotated[None, Depends(check_storage_quota)]

QUOTA_RESPONSE: dict[int | str, dict[str, Any]] = {
    status.HTTP_403_FORBIDDEN: {
        "model": ErrorResponse,
        "description": "The caller's runs and experiments store their quota "
        "(ASYNCFLOW_STORAGE_QUOTA_MB); delete some to submit more.",
    }
}
