"""Queueing theory the engine is checked against (estimates live in `asyncflow_backend.statistics`).

Notation, for one station fed at arrival rate lambda (requests per second):

- S, the service time of one request, with mean E[S] and second moment E[S²];
  mu = 1 / E[S] is the service rate of one core;
- c, the number of cores; rho = lambda / (c mu) the utilisation of each core;
- Wq, the mean wait before service; W = Wq + E[S] the mean response time;
- Lq = lambda Wq, the mean number waiting; L = lambda W, the mean number in the station
  (Little's law, L = lambda W, holds for any stable station and any discipline).

Every model here is stable only when rho < 1; the functions raise `ValueError`
otherwise, since a queue that grows without bound has no mean.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse, stats
from scipy.sparse import linalg as sparse_linalg

from asyncflow_backend.config.constants import Distribution
from asyncflow_backend.schemas.random_variables import RVConfig

MAX_ITERATIONS = 1_000_000


@dataclass(frozen=True)
class QueueMetrics:
    """Steady-state means of one station."""

    arrival_rate: float
    """lambda, requests per second."""
    utilisation: float
    """rho, the long-run fraction of time each core is busy."""
    wait: float
    """Wq, seconds spent waiting for a core."""
    response: float
    """W = Wq + E[S], seconds from arrival to departure."""

    @property
    def queue_length(self) -> float:
        """Lq = lambda Wq, the mean number of requests waiting for a core."""
        return self.arrival_rate * self.wait

    @property
    def in_system(self) -> float:
        """L = lambda W, the mean number of requests waiting or in service."""
        return self.arrival_rate * self.response


def _stable_utilisation(arrival_rate: float, mean_service: float, servers: int = 1) -> float:
    if arrival_rate <= 0 or mean_service <= 0 or servers < 1:
        raise ValueError("arrival rate, service time and servers must be positive")
    rho = arrival_rate * mean_service / servers
    if rho >= 1:
        raise ValueError(f"utilisation {rho:g} >= 1: the queue is unstable")
    return rho


def mm1(arrival_rate: float, service_rate: float) -> QueueMetrics:
    """M/M/1: Poisson arrivals, exponential service, one core.

    Wq = rho / (mu - lambda) and W = 1 / (mu - lambda). The response time is itself
    exponential with rate mu - lambda (see `mm1_response_cdf`).
    """
    rho = _stable_utilisation(arrival_rate, 1 / service_rate)
    return QueueMetrics(
        arrival_rate,
        rho,
        wait=rho / (service_rate - arrival_rate),
        response=1 / (service_rate - arrival_rate),
    )


def mm1_response_cdf(t: float | np.ndarray, arrival_rate: float, service_rate: float) -> np.ndarray:
    """P(response time <= t) in an M/M/1 FIFO queue: 1 - exp(-(mu - lambda) t)."""
    _stable_utilisation(arrival_rate, 1 / service_rate)
    return -np.expm1(-(service_rate - arrival_rate) * np.asarray(t, dtype=np.float64))


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: the blocking probability of c servers offered a = lambda / mu erlangs, no queue.

    Computed with the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)).
    """
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return blocking


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: the probability that an arrival waits in an M/M/c queue.

    With a = lambda / mu and rho = a / c < 1, C(c, a) = B / (1 - rho (1 - B)), where
    B = B(c, a) is Erlang B; this equals the textbook
    (a^c / c!) / (1 - rho) / (Σ_{k<c} a^k / k! + (a^c / c!) / (1 - rho)).
    """
    rho = offered_load / servers
    if rho >= 1:
        raise ValueError(f"utilisation {rho:g} >= 1: the queue is unstable")
    blocking = erlang_b(servers, offered_load)
    return blocking / (1 - rho * (1 - blocking))


def mmc(arrival_rate: float, service_rate: float, servers: int) -> QueueMetrics:
    """M/M/c: Poisson arrivals, exponential service, c cores sharing one FIFO queue.

    Wq = C(c, lambda/mu) / (c mu - lambda) and W = Wq + 1 / mu.
    """
    rho = _stable_utilisation(arrival_rate, 1 / service_rate, servers)
    wait = erlang_c(servers, arrival_rate / service_rate) / (servers * service_rate - arrival_rate)
    return QueueMetrics(arrival_rate, rho, wait, wait + 1 / service_rate)


def mmc_response_survival(
    t: float, arrival_rate: float, service_rate: float, servers: int
) -> float:
    """P(response time > t) in an M/M/c FIFO queue.

    An arrival waits with probability C = C(c, lambda/mu) (Erlang C), and then for
    an exponential time of rate theta = c mu - lambda; its service is exponential
    of rate mu, independent of the wait (Gross, Shortle, Thompson and Harris,
    *Fundamentals of Queueing Theory*, 4th ed., section 2.3). So
    P(T > t) = (1 - C) e^(-mu t) + C P(E_theta + E_mu > t), where the sum of the two
    exponentials has P(> t) = (theta e^(-mu t) - mu e^(-theta t)) / (theta - mu),
    or (1 + mu t) e^(-mu t) when theta = mu. With c = 1 this is e^(-(mu - lambda) t).
    Raises `ValueError` if the queue is unstable.
    """
    _stable_utilisation(arrival_rate, 1 / service_rate, servers)
    waits = erlang_c(servers, arrival_rate / service_rate)
    theta = servers * service_rate - arrival_rate
    mu = service_rate
    if math.isclose(theta, mu):
        both = (1 + mu * t) * math.exp(-mu * t)
    else:
        both = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1 - waits) * math.exp(-mu * t) + waits * both


def mmc_response_quantile(
    probability: float, arrival_rate: float, service_rate: float, servers: int
) -> float:
    """The `probability` quantile of the M/M/c response time (say 0.95 for p95), in seconds.

    Solves `mmc_response_survival(t) = 1 - probability` by Brent's method
    (scipy's `brentq`); the survival function falls monotonically from 1.
    Raises `ValueError` if the queue is unstable or the probability not in (0, 1).
    """
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    target = 1 - probability

    def excess(t: float) -> float:
        return mmc_response_survival(t, arrival_rate, service_rate, servers) - target

    high = 1 / service_rate
    while excess(high) > 0:
        high *= 2
    return float(optimize.brentq(excess, 0.0, high, xtol=1e-12))


def mg1(arrival_rate: float, mean_service: float, second_moment: float) -> QueueMetrics:
    """M/G/1 by the Pollaczek-Khinchine formula: Wq = lambda E[S²] / (2 (1 - rho)).

    With E[S²] = (1 + cs²) E[S]², cs² the squared coefficient of variation of S,
    this is Wq = rho E[S] (1 + cs²) / (2 (1 - rho)): only the first two moments of the
    service time matter.
    """
    rho = _stable_utilisation(arrival_rate, mean_service)
    wait = arrival_rate * second_moment / (2 * (1 - rho))
    return QueueMetrics(arrival_rate, rho, wait, wait + mean_service)


def md1(arrival_rate: float, service_time: float) -> QueueMetrics:
    """M/D/1, the P-K formula with E[S²] = E[S]²: Wq = rho E[S] / (2 (1 - rho)), half of M/M/1's."""
    return mg1(arrival_rate, service_time, service_time * service_time)


def gim1(
    arrival_rate: float, service_rate: float, interarrival_lst: Callable[[float], float]
) -> QueueMetrics:
    """GI/M/1: renewal arrivals, exponential service, one core.

    `interarrival_lst(s)` is the Laplace-Stieltjes transform A*(s) = E[exp(-s T)] of
    the time T between arrivals. An arrival finds the core busy with probability sigma,
    the root in (0, 1) of sigma = A*(mu (1 - sigma)); then Wq = sigma / (mu (1 - sigma)) and
    W = 1 / (mu (1 - sigma)). The root is found by the fixed-point iteration from 0,
    which increases to it monotonically.
    """
    rho = _stable_utilisation(arrival_rate, 1 / service_rate)
    sigma = 0.0
    for _ in range(MAX_ITERATIONS):
        previous, sigma = sigma, interarrival_lst(service_rate * (1 - sigma))
        if abs(sigma - previous) < 1e-15:
            break
    else:
        raise ArithmeticError("sigma = A*(mu (1 - sigma)) did not converge")  # pragma: no cover
    return QueueMetrics(
        arrival_rate,
        rho,
        wait=sigma / (service_rate * (1 - sigma)),
        response=1 / (service_rate * (1 - sigma)),
    )


def round_robin_share(total_rate: float, servers: int, service_rate: float) -> QueueMetrics:
    """One of k identical M/1 servers fed in turn by a round-robin balancer (E_k/M/1).

    Each server receives every k-th arrival of a Poisson stream of rate Λ, so its
    interarrival time is Erlang-k with k phases of rate Λ and mean k / Λ:
    A*(s) = (Λ / (Λ + s))^k. Its queue is shorter than an M/M/1 queue at the same
    load, because round robin makes arrivals more regular.
    """
    return gim1(
        total_rate / servers,
        service_rate,
        lambda s: (total_rate / (total_rate + s)) ** servers,
    )


@dataclass(frozen=True)
class LossMetrics:
    """Steady-state means of a station that turns requests away (a loss or an abandonment)."""

    arrival_rate: float
    """lambda, requests offered per second."""
    lost: float
    """The fraction of offered requests that are turned away (blocked or abandoned)."""
    wait: float
    """Seconds spent waiting for a core, averaged over every offered request (those turned
    away included, with what they waited)."""
    in_system: float
    """L, the mean number of requests waiting or in service."""
    queue_length: float
    """Lq, the mean number waiting for a core."""


def birth_death_distribution(births: np.ndarray, deaths: np.ndarray) -> np.ndarray:
    """The stationary distribution of a birth-death chain on the states 0..N.

    `births[n]` is the rate from n to n + 1 (n < N) and `deaths[n]` the rate from n + 1
    to n; detailed balance gives pi(n + 1) = pi(n) births[n] / deaths[n], normalised.
    Computed in logarithms, so long chains neither overflow nor underflow.
    """
    log_ratio = np.log(births) - np.log(deaths)
    log_pi = np.concatenate(([0.0], np.cumsum(log_ratio)))
    pi = np.exp(log_pi - log_pi.max())
    distribution: np.ndarray = pi / pi.sum()
    return distribution


def mm1k(arrival_rate: float, service_rate: float, capacity: int) -> LossMetrics:
    """M/M/1/K: one core and room for K requests in all (K - 1 waiting); an arrival that
    finds K turned away.

    pi(n) = rho^n (1 - rho) / (1 - rho^(K + 1)) for n = 0..K, any rho (Gross, Shortle,
    Thompson and Harris, *Fundamentals of Queueing Theory*, 4th ed., §2.5); the loss
    is pi(K), L = Σ n pi(n), Lq = L - (1 - pi(0)), and the mean response of the admitted
    requests is W = L / (lambda (1 - pi(K))) by Little's law (see `response_of_admitted`).
    """
    if arrival_rate <= 0 or service_rate <= 0 or capacity < 1:
        raise ValueError("arrival rate, service rate and capacity must be positive")
    states = np.arange(capacity + 1)
    pi = birth_death_distribution(np.full(capacity, arrival_rate), np.full(capacity, service_rate))
    in_system = float(states @ pi)
    queue_length = in_system - (1 - float(pi[0]))
    return LossMetrics(
        arrival_rate,
        lost=float(pi[-1]),
        wait=queue_length / arrival_rate,
        in_system=in_system,
        queue_length=queue_length,
    )


def token_bucket_rejection(arrival_rate: float, token_rate: float, burst: int) -> float:
    """The fraction of a Poisson stream a token bucket rejects, the bucket refilled
    continuously at `token_rate` up to `burst` tokens, each request taking a whole one.

    The bucket's deficit (burst minus its tokens, in seconds of refill) is the workload of
    an M/D/1 queue served at `token_rate` that turns away an arrival who would push it past
    `burst` services: an arrival passes iff fewer than `burst` are "in the system", so the
    rejected fraction is the blocking of M/D/1/K with K = `burst`. That comes from the chain
    embedded at departures, pi_d on 0..K-1 with a_k = P(k Poisson arrivals in one service)
    (scipy), and p_K = 1 - 1 / (pi_d(0) + rho) (Gross, Shortle, Thompson and Harris,
    *Fundamentals of Queueing Theory*, 4th ed., §5.1.4, M/G/1/K).
    """
    if arrival_rate <= 0 or token_rate <= 0 or burst < 1:
        raise ValueError("arrival rate, token rate and burst must be positive")
    rho = arrival_rate / token_rate
    if burst == 1:
        return rho / (1 + rho)  # M/D/1/1 is M/G/1/1: Erlang B with one server, any service
    k = burst
    arrivals = stats.poisson.pmf(np.arange(k), rho)
    chain = np.zeros((k, k))
    for i in range(k):
        first = max(i - 1, 0)
        for j in range(first, k - 1):
            chain[i, j] = arrivals[j - first]
        chain[i, k - 1] = 1.0 - chain[i, : k - 1].sum()
    # The stationary vector: pi (P - I) = 0 with sum(pi) = 1, by least squares.
    system = np.vstack([chain.T - np.eye(k), np.ones(k)])
    target = np.zeros(k + 1)
    target[-1] = 1.0
    pi, *_ = np.linalg.lstsq(system, target, rcond=None)
    return float(1.0 - 1.0 / (pi[0] + rho))


def response_of_admitted(metrics: LossMetrics) -> float:
    """W, the mean seconds from arrival to departure of the requests not turned away:
    L / (lambda (1 - loss)) by Little's law on the admitted stream."""
    return metrics.in_system / (metrics.arrival_rate * (1 - metrics.lost))


def erlang_a(
    arrival_rate: float,
    service_rate: float,
    servers: int,
    abandonment_rate: float,
    tolerance: float = 1e-15,
) -> LossMetrics:
    """M/M/c+M (Erlang A, Palm 1943): c cores, exponential service, and exponential
    patience of rate theta for the requests waiting for a core; a request whose patience
    runs out before its service starts leaves the queue. Once in service it stays.

    The number in the station is a birth-death chain with births lambda and deaths
    d(n) = min(n, c) mu + max(n - c, 0) theta (Garnett, Mandelbaum and Reiman, "Designing
    a call center with impatient customers", M&SOM 4(3), 2002, §2): unnormalised weights
    w(0) = 1, w(n + 1) = w(n) r(n) with r(n) = lambda / d(n + 1). Lost = Σ (n - c)^+ theta
    pi(n) / lambda, the rate of abandonment over the arrival rate; the mean wait over
    every arrival is Lq / lambda (Little).

    The chain is summed in blocks of states keeping only running sums, so memory stays
    O(block) however far the chain reaches (a patience rate of 1e-7 would lay out 10⁸
    states), and it is truncated after the first block whose last state N has
    q = r(N) < 1 and

        w(N) q / (1 - q) < tolerance Σ_{n≤N} w(n),
        w(N) (N q / (1 - q) + q / (1 - q)²) < tolerance Σ_{n≤N} n w(n).

    Bound on what is left out: d is nondecreasing, so r is nonincreasing and r(n) ≤ q
    for every n ≥ N; hence w(N + k) ≤ w(N) q^k for k ≥ 1, and summing the geometric
    series, Σ_{k≥1} w(N + k) ≤ w(N) q / (1 - q) and Σ_{k≥1} (N + k) w(N + k) ≤
    w(N) (N q / (1 - q) + q / (1 - q)²). So the probability beyond N is below
    `tolerance`, and L (hence Lq ≤ L and the loss) is short of its true value by less
    than a fraction `tolerance` of L. As theta > 0, d grows without bound and q < 1 holds
    past n = c + lambda / theta at the latest: the chain is stable for any load.
    """
    if min(arrival_rate, service_rate, abandonment_rate) <= 0 or servers < 1:
        raise ValueError("rates and servers must be positive")
    log_arrival = math.log(arrival_rate)
    # Running sums of w(n), n w(n) and (n - c)^+ w(n), each times exp(-scale) with scale
    # the largest log weight so far: neither the climb to the mode nor the tail can
    # overflow or underflow.
    scale = mass = first_moment = waiting = 0.0
    log_w_start = 0.0  # log w(start)
    start, block = 0, 256
    while True:
        states = np.arange(start, start + block, dtype=np.float64)
        following = states + 1
        deaths = np.minimum(following, servers) * service_rate + (
            np.maximum(following - servers, 0) * abandonment_rate
        )
        log_ratio = log_arrival - np.log(deaths)
        log_w = log_w_start + np.concatenate(([0.0], np.cumsum(log_ratio[:-1])))
        new_scale = max(scale, float(log_w.max()))
        shrink = math.exp(scale - new_scale)
        weights = np.exp(log_w - new_scale)
        scale = new_scale
        mass = mass * shrink + float(weights.sum())
        first_moment = first_moment * shrink + float(states @ weights)
        waiting = waiting * shrink + float(np.maximum(states - servers, 0) @ weights)
        last, q = float(states[-1]), math.exp(float(log_ratio[-1]))
        if q < 1:
            w_last = float(weights[-1])
            tail_mass = w_last * q / (1 - q)
            tail_moment = w_last * (last * q / (1 - q) + q / (1 - q) ** 2)
            if tail_mass < tolerance * mass and tail_moment < tolerance * first_moment:
                break
        log_w_start = float(log_w[-1] + log_ratio[-1])
        start += block
        block = min(2 * block, 1 << 16)
    queue_length = waiting / mass
    return LossMetrics(
        arrival_rate,
        lost=queue_length * abandonment_rate / arrival_rate,
        wait=queue_length / arrival_rate,
        in_system=first_moment / mass,
        queue_length=queue_length,
    )


def infinite_server_delay(arrival_rate: float, mean_delay: float) -> QueueMetrics:
    """M/G/∞: a pure delay (a network link, an I/O wait). Nobody waits; L = lambda E[D]."""
    return QueueMetrics(arrival_rate, 0.0, 0.0, mean_delay)


@dataclass(frozen=True)
class Moments:
    """First two moments of a non-negative random variable."""

    mean: float
    second: float
    """E[X²]."""

    @property
    def variance(self) -> float:
        """E[X²] - E[X]²."""
        return self.second - self.mean * self.mean

    @property
    def scv(self) -> float:
        """Squared coefficient of variation, Var[X] / E[X]²."""
        return self.variance / (self.mean * self.mean)


def duration_moments(spec: float | RVConfig) -> Moments:
    """The exact mean and second moment of the durations the engine draws for `spec`.

    These follow the engine's samplers, clipping at zero included:

    - a number or `deterministic`: E[X] = m, E[X²] = m²;
    - `exponential`: E[X²] = 2 m²;
    - `poisson`: E[X²] = m + m²;
    - `log_normal` (parameterised by its own mean and variance v): E[X²] = v + m²;
    - `normal` with standard deviation s = √v, clipped at 0: with z = m / s,
      E[X] = m Φ(z) + s φ(z) and E[X²] = (m² + s²) Φ(z) + m s φ(z);
    - `uniform` on [m - h, m + h] with h = √(3 v) (h = m without a variance),
      clipped at 0: E[X²] = m² + h² / 3 when h <= m, else with a = m - h < 0
      and b = m + h, E[X] = b² / (2 (b - a)) and E[X²] = b³ / (3 (b - a)).
    """
    if not isinstance(spec, RVConfig):
        return Moments(spec, spec * spec)
    m = spec.mean
    v = spec.variance or 0.0
    match spec.distribution:
        case Distribution.DETERMINISTIC:
            return Moments(m, m * m)
        case Distribution.EXPONENTIAL:
            return Moments(m, 2 * m * m)
        case Distribution.POISSON:
            return Moments(m, m + m * m)
        case Distribution.LOG_NORMAL:
            return Moments(m, v + m * m)
        case Distribution.NORMAL:
            s = math.sqrt(v)
            if s == 0:
                return Moments(max(m, 0.0), max(m, 0.0) ** 2)
            z = m / s
            cdf = 0.5 * math.erfc(-z / math.sqrt(2))
            pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
            return Moments(m * cdf + s * pdf, (m * m + v) * cdf + m * s * pdf)
        case Distribution.UNIFORM:
            half = math.sqrt(3 * v) if spec.variance is not None else m
            low, high = m - half, m + half
            if low >= 0:
                return Moments(m, m * m + half * half / 3)
            width = high - low
            return Moments(high**2 / (2 * width), high**3 / (3 * width))
    raise ValueError(f"unsupported distribution {spec.distribution}")  # pragma: no cover


@dataclass(frozen=True)
class BreakdownMetrics:
    """An M/M/1 whose server fails and is repaired: steady-state figures."""

    availability: float
    """Long-run fraction of time the server is up."""
    mean_in_system: float
    """L: requests in the station, waiting, in service or held while it is down."""
    response_time: float
    """W = L / lambda (Little's law): the mean time in the station over every arrival;
    for `lose` the lost ones count until their loss."""
    lost_fraction: float
    """Fraction of arrivals lost to a failure (0 for `resume`)."""


def mm1_with_breakdowns(
    arrival_rate: float,
    service_rate: float,
    failure_rate: float,
    repair_rate: float,
    *,
    lose: bool = False,
    truncation: int | None = None,
) -> BreakdownMetrics:
    """An M/M/1 queue whose server fails at `failure_rate` whether busy or idle
    (time-based failures) and is repaired at `repair_rate`, arrivals queuing while it is
    down; solved exactly from its two-dimensional Markov chain, (requests in the
    station) x (up, down), truncated at `truncation` requests.

    With `lose` False the service cut by a failure resumes after the repair
    (preemptive-resume: for exponential service the same chain as preemptive-repeat):
    the model of Avi-Itzhak and Naor, "Some queuing problems with the service station
    subject to breakdown", Operations Research 11 (1963), and Mitrany and Avi-Itzhak,
    "A many-server queue with service interruptions", Operations Research 16 (1968).
    It is stable when lambda < mu A, A = repair / (failure + repair) the
    availability. With `lose` True a failure empties the station (every request in it
    is lost) and the chain jumps to (0, down); the lost fraction is
    failure_rate x E[N; up] / lambda.

    Raises `ValueError` if the queue is unstable (`resume`) or the truncation leaves
    more than 1e-9 of the probability at its edge.
    """
    availability = repair_rate / (failure_rate + repair_rate)
    if not lose and arrival_rate >= service_rate * availability:
        raise ValueError(
            f"unstable: lambda = {arrival_rate} >= mu x availability = "
            f"{service_rate * availability}"
        )
    size = truncation or 2000
    up = np.arange(size)
    down = size + up
    rows = [up[:-1], down[:-1], up[1:], down, up]
    cols = [up[1:], down[1:], up[:-1], up, down[0] + 0 * up if lose else down]
    rates = [arrival_rate, arrival_rate, service_rate, repair_rate, failure_rate]
    q = sparse.coo_matrix(
        (
            np.concatenate([np.full(len(r), rate) for r, rate in zip(rows, rates, strict=True)]),
            (np.concatenate(rows), np.concatenate(cols)),
        ),
        shape=(2 * size, 2 * size),
    ).tocsr()
    q = q - sparse.diags(np.asarray(q.sum(axis=1)).ravel())
    # pi Q = 0 with sum(pi) = 1: replace one balance equation by the normalisation.
    a = q.T.tolil()
    a[-1, :] = 1.0
    b = np.zeros(2 * size)
    b[-1] = 1.0
    pi = np.asarray(sparse_linalg.spsolve(a.tocsc(), b))
    edge = pi[up[-1]] + pi[down[-1]]
    if edge > 1e-9:
        raise ValueError(f"truncation at {size} leaves {edge:.2g} at its edge; raise it")
    in_system = float(up @ pi[up] + up @ pi[down])
    lost_rate = failure_rate * float(up @ pi[up]) if lose else 0.0
    return BreakdownMetrics(
        availability=availability,
        mean_in_system=in_system,
        response_time=in_system / arrival_rate,
        lost_fraction=lost_rate / arrival_rate,
    )
