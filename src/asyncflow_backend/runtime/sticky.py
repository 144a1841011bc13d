"""Cache lookups whose outcome belongs to the request, not to the attempt.

A retry asks for the same key as the attempt it repeats, so it meets the cache as that
attempt left it: a hit stays a hit, and a miss stays a miss until an earlier attempt of the
request has run the miss steps to their end (the write-back). Only runs that retry build
these steps; the others keep the plain `CacheLookup`, whose outcome is the same when no
request is sent twice.

A request is named by its first attempt at the client (the root) and the call sites that led
from it to this server: a call step's retried sub-request, or a sub-request of a client's
retry, comes down the same sites from the same root and so finds the same entry. The entries
live on the root, and go with it.
"""

from dataclasses import dataclass

from asyncflow_backend.runtime.request import RequestState, SubRequest
from asyncflow_backend.runtime.steps import NO_TIME, R, StepHost
from asyncflow_backend.samplers import Sampler


def lookup_key(request: RequestState, lookup: object) -> tuple[RequestState, object]:
    """(the root request, the key in the root's `lookups` of the cache step whose token is
    `lookup`, as `request` reaches it)."""
    path: list[object] = []
    while isinstance(request, SubRequest):
        path.append(request.site)
        request = request.parent  # type: ignore[assignment]  # a sub-request has a parent
    # A client's retry (`Attempt`) names its first attempt; a first attempt is its own.
    root: RequestState = getattr(request, "first", request)
    if not path:
        return root, lookup
    path.append(lookup)
    return root, tuple(path)


@dataclass(frozen=True, slots=True)
class StickyCacheLookup:
    """A `CacheLookup` whose outcome the request's later attempts keep: a first attempt
    draws (from the same stream, in the same order, as `CacheLookup`); a later one hits if
    the first hit or an attempt has written the key back since (`WriteBack`), else misses."""

    hit_ratio: float
    uniform: Sampler
    miss_at: int
    token: object
    """Names the cache step, shared with its `WriteBack`."""
    duration: Sampler = NO_TIME

    def run(self, host: StepHost[R], request: R) -> None:
        """Look the outcome up, or draw it, and go on with the branch."""
        root, key = lookup_key(request, self.token)  # type: ignore[arg-type]
        try:
            lookups = root.lookups
        except AttributeError:
            lookups = root.lookups = {}
        hit = lookups.get(key)
        if hit is None:
            hit = lookups[key] = self.uniform() < self.hit_ratio
        if not hit:
            request.step_index = self.miss_at
        host.advance(request)


@dataclass(frozen=True, slots=True)
class WriteBack:
    """The end of a sticky cache step's miss steps: the request's later attempts hit."""

    token: object
    """The token of its `StickyCacheLookup`."""
    duration: Sampler = NO_TIME

    def run(self, host: StepHost[R], request: R) -> None:
        """Mark the key written and go on after the cache step."""
        root, key = lookup_key(request, self.token)  # type: ignore[arg-type]
        root.lookups[key] = True
        host.advance(request)
