"""Compiling a server's endpoints into plans: the flat step lists its requests run."""

import bisect
import itertools
from collections.abc import Callable

import numpy as np

from asyncflow_backend.config.constants import DrawScope, TimeoutAction
from asyncflow_backend.runtime.context import BuildContext, BuildError
from asyncflow_backend.runtime.events.slowdown import scaled
from asyncflow_backend.runtime.policies.circuit_breaker import Breaker
from asyncflow_backend.runtime.policies.retry import RetryPolicy
from asyncflow_backend.runtime.steps import (
    CacheLookup,
    CallSite,
    CallStep,
    CpuStep,
    EndpointPlan,
    IoStep,
    JumpTo,
    PooledIoStep,
    Step,
)
from asyncflow_backend.runtime.sticky import StickyCacheLookup, WriteBack
from asyncflow_backend.samplers import variate
from asyncflow_backend.samplers.variates import batched
from asyncflow_backend.schemas.calls import call_site_id
from asyncflow_backend.schemas.steps import CacheStep as CacheSpec
from asyncflow_backend.schemas.steps import CallStep as CallSpec
from asyncflow_backend.schemas.steps import CpuStep as CpuSpec
from asyncflow_backend.schemas.steps import IoStep as IoSpec
from asyncflow_backend.schemas.steps import RamStep as RamSpec
from asyncflow_backend.schemas.steps import Step as SpecStep
from asyncflow_backend.schemas.topology import Server


def compile_plans(spec: Server, pools: list[str], ctx: BuildContext) -> list[EndpointPlan]:
    """One plan per endpoint of `spec`, in order; `pools` names the server's pools by index.

    Raises `BuildError` if a step names a pool the server does not have.
    """
    plans = []
    for e, endpoint in enumerate(spec.endpoints):
        ram = 0.0
        for step in endpoint.steps:
            if isinstance(step, RamSpec):
                ram += step.megabytes
        compiler = PlanCompiler(spec, endpoint.endpoint_name, e, pools, ctx)
        compiler.add(endpoint.steps)
        plans.append(EndpointPlan(e, endpoint.endpoint_name, ram, tuple(compiler.steps)))
    return plans


def endpoint_picker(spec: Server, rng: np.random.Generator) -> Callable[[], int]:
    """Index of the endpoint each request calls, weighted by `probability`."""
    if len(spec.endpoints) == 1:
        return itertools.repeat(0).__next__
    equal_share = 1.0 / len(spec.endpoints)
    weights = [ep.probability or equal_share for ep in spec.endpoints]
    total = sum(weights)
    cumulative = list(itertools.accumulate(w / total for w in weights))
    uniform = batched(rng.random)
    last = len(cumulative) - 1
    return lambda: min(bisect.bisect_right(cumulative, uniform()), last)


class PlanCompiler:
    """Turns an endpoint's steps into a flat plan: each scenario step builds its own runtime
    step through this compiler (`StepBuilder`); a cache step becomes a `CacheLookup`, its
    hit steps, a `JumpTo` past its miss steps, then its miss steps.

    Each timed step draws from its own stream, named by its label in the endpoint
    (`step:{server}:{endpoint index}:{label}`), so adding a step elsewhere does not
    change this one's draws. On a server some slowdown targets, CPU and I/O draws are
    scaled by its factor when they are made (when the step's service starts).
    """

    def __init__(
        self, spec: Server, endpoint: str, index: int, pools: list[str], ctx: BuildContext
    ) -> None:
        self.spec = spec
        self.endpoint = endpoint
        self.index = index
        self.pools = pools
        self.ctx = ctx
        self.steps: list[Step] = []

    def add(self, steps: list[SpecStep], label: str = "") -> None:
        """Compile `steps`, labelled under `label` (the endpoint's top level when empty)."""
        for k, step in enumerate(steps):
            step.to_runtime(self, f"{label}.{k}" if label else str(k))

    def _stream(self, label: str) -> np.random.Generator:
        return self.ctx.streams.generator(f"step:{self.spec.id}:{self.index}:{label}")

    def _pool_index(self, step: IoSpec | CallSpec) -> tuple[str | None, int | None]:
        pool = self.spec.pool_of(step)
        return pool, self.pools.index(pool) if pool in self.pools else None

    def cpu(self, step: CpuSpec, label: str) -> None:
        """A CPU burst drawn from the step's stream."""
        draw = variate(step.value, self._stream(label))
        self.steps.append(CpuStep(scaled(draw, self.ctx.slowdowns.cpu.get(self.spec.id))))

    def io(self, step: IoSpec, label: str) -> None:
        """An I/O wait drawn from the step's stream, holding its pool's connection if any.

        Raises `BuildError` if the step names a pool the server does not have."""
        pool, pool_index = self._pool_index(step)
        draw = variate(step.value, self._stream(label))
        duration = scaled(draw, self.ctx.slowdowns.io.get(self.spec.id))
        if pool is None:
            self.steps.append(IoStep(duration))
        elif pool_index is not None:
            self.steps.append(PooledIoStep(duration, pool_index))
        else:
            raise BuildError(f"server '{self.spec.id}' has no pool '{pool}'")

    def ram(self, step: RamSpec, label: str) -> None:
        """Nothing: RAM is reserved for the whole request (`EndpointPlan.ram`)."""

    def call(self, step: CallSpec, label: str) -> None:
        """A call step with its sites, breaker, timeout (stream
        `timeout:{server}:{endpoint index}:{label}`) and retries (stream `retry:...`)."""
        _, pool_index = self._pool_index(step)
        sites = tuple(
            CallSite(call_site_id(self.spec.id, self.endpoint, label, target), target)
            for target in step.call_targets
        )
        breaker = None if step.circuit_breaker is None else Breaker(step.circuit_breaker)
        for site in sites:
            site.breaker = breaker
        timeout = (
            None
            if step.timeout_s is None
            else variate(
                step.timeout_s,
                self.ctx.streams.generator(f"timeout:{self.spec.id}:{self.index}:{label}"),
            )
        )
        self.steps.append(
            CallStep(
                sites,
                step.answers_needed,
                pool_index,
                timeout=timeout,
                cancel=step.on_timeout is TimeoutAction.CANCEL,
                place=f"{self.spec.id}:{self.endpoint}#{label}",
                retry=None
                if step.retry is None
                else RetryPolicy(step.retry, batched(self._stream(f"retry:{label}").random)),
                breaker=breaker,
            )
        )

    def cache(self, step: CacheSpec, label: str) -> None:
        """A lookup (a uniform draw from the step's stream), the hit steps, a jump past the
        miss steps, then the miss steps. In a run that retries, a step whose outcome is per
        request looks up what the request's earlier attempts drew (`StickyCacheLookup`),
        and its miss steps end with a `WriteBack`."""
        at = len(self.steps)
        self.steps.append(JumpTo(-1))  # the lookup, once the miss steps' start is known
        self.add(step.hit, f"{label}.hit")
        jump = len(self.steps)
        self.steps.append(JumpTo(-1))
        miss_at = len(self.steps)
        self.add(step.miss, f"{label}.miss")
        uniform = batched(self._stream(label).random)
        hit_ratio = float(step.hit_ratio)
        if self.ctx.retries and step.outcome_per is DrawScope.REQUEST:
            token = object()
            self.steps.append(WriteBack(token))
            self.steps[at] = StickyCacheLookup(hit_ratio, uniform, miss_at, token)
        else:
            self.steps[at] = CacheLookup(hit_ratio, uniform, miss_at)
        self.steps[jump] = JumpTo(len(self.steps))
