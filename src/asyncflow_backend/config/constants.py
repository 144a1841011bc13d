"""The vocabulary of the scenario language and the defaults it shares with AsyncFlow.

Every string here appears verbatim in scenario files, so renaming one breaks
stored scenarios: add members, never rename them.
"""

from enum import StrEnum
from typing import Self


class Distribution(StrEnum):
    """Distributions a random variable may follow."""

    POISSON = "poisson"
    NORMAL = "normal"
    LOG_NORMAL = "log_normal"
    EXPONENTIAL = "exponential"
    UNIFORM = "uniform"
    DETERMINISTIC = "deterministic"


class CpuStepKind(StrEnum):
    """Steps that keep a core busy."""

    INITIAL_PARSING = "initial_parsing"
    CPU_BOUND_OPERATION = "cpu_bound_operation"


class IoStepKind(StrEnum):
    """Steps that wait without holding a core."""

    TASK_SPAWN = "io_task_spawn"
    LLM = "io_llm"
    WAIT = "io_wait"
    DB = "io_db"
    CACHE = "io_cache"


class RamStepKind(StrEnum):
    """Steps that reserve memory for the life of the request on the server."""

    RAM = "ram"


class CallStepKind(StrEnum):
    """Steps that send a sub-request to another node and wait for its answer."""

    CALL = "call"


class CacheStepKind(StrEnum):
    """Steps that look something up in a cache: a hit runs some steps, a miss others."""

    CACHE = "cache"


class StepOperation(StrEnum):
    """The single key of a step's `step_operation` mapping."""

    CPU_TIME = "cpu_time"
    IO_WAITING_TIME = "io_waiting_time"
    NECESSARY_RAM = "necessary_ram"


class LoadBalancerAlgorithm(StrEnum):
    """How a load balancer picks the next server (its policy:
    `runtime.policies.balancing`).

    Each member is written with whether its policy reads the servers' load
    (`reads_load`): one that does sends less to a busier server, so the scenario
    checks cannot tell how it will share the requests out. A member cannot be added
    without saying.
    """

    reads_load: bool

    def __new__(cls, value: str, reads_load: bool) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.reads_load = reads_load
        return member

    ROUND_ROBIN = "round_robin", False
    LEAST_CONNECTION = "least_connection", True
    RANDOM = "random", False
    WEIGHTED_ROUND_ROBIN = "weighted_round_robin", False
    POWER_OF_TWO_CHOICES = "power_of_two_choices", True


class Outcome(StrEnum):
    """Every way a request from the client can end (the keys of the results' `requests`)."""

    COMPLETED = "completed"
    DROPPED = "dropped"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    FAILED = "failed"


class EndReason(StrEnum):
    """Why a request ended other than completed: the `reason` of `requests.ends`."""

    ANSWERED = "answered"
    """Completed: the answer came back to the client in time."""
    DROPOUT = "dropout"
    """Dropped: an edge lost it (`dropout_rate`)."""
    CALL_DROPPED = "call_dropped"
    """Failed: a call it made was lost on an edge."""
    CALL_REJECTED = "call_rejected"
    """Failed: a call it made was refused by the admission control of the called server."""
    CALL_TIMED_OUT = "call_timed_out"
    """Failed: a call it made got no answer within the call's `timeout_s`."""
    QUEUE_FULL = "queue_full"
    """Rejected: the server's ready queue held `max_ready_queue` requests."""
    CONCURRENCY_LIMIT = "concurrency_limit"
    """Rejected: the server held `max_concurrency` requests."""
    SERVER_DOWN = "server_down"
    """Rejected: it reached a server that was down (`when_down: reject`)."""
    NO_SERVER_UP = "no_server_up"
    """Rejected: it reached a balancer none of whose servers was up (`when_none_up: reject`)."""
    SERVER_FAILURE = "server_failure"
    """Failed: the server it was on failed and lost its work (`work_in_progress: lose`)."""
    RATE_LIMITED = "rate_limited"
    """Rejected: the load balancer's token bucket (`rate_limit`) was empty."""
    CIRCUIT_OPEN = "circuit_open"
    """Failed: the call step's circuit breaker was open (or half-open with its trial calls
    taken), so the call was not sent."""
    CLIENT_TIMEOUT = "client_timeout"
    """Timed out while the servers keep working on it (`on_timeout: keep_working`)."""
    WITHDRAWN_FROM_RAM_QUEUE = "withdrawn_from_ram_queue"
    WITHDRAWN_FROM_READY_QUEUE = "withdrawn_from_ready_queue"
    WITHDRAWN_FROM_POOL_QUEUE = "withdrawn_from_pool_queue"
    WITHDRAWN_FROM_IO_WAIT = "withdrawn_from_io_wait"
    WITHDRAWN_FROM_CALL = "withdrawn_from_call"
    """Timed out (`on_timeout: cancel`) while waiting for the answers to a call."""
    STOPPED_AFTER_CPU_STEP = "stopped_after_cpu_step"
    """Timed out (`on_timeout: cancel`) on a core: it stops once its CPU burst ends."""
    IN_TRANSIT = "in_transit"
    """Timed out (`on_timeout: cancel`) on an edge or a balancer: it is discarded on arrival."""


class RetryOn(StrEnum):
    """The ends of an attempt a retry policy may retry: each names an `Outcome`."""

    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    DROPPED = "dropped"
    FAILED = "failed"


class Jitter(StrEnum):
    """How a retry's backoff is randomised (Brooker, "Exponential Backoff And Jitter", AWS
    Architecture Blog, 2015): `full` draws uniformly in [0, d], `equal` in [d/2, d], `none`
    waits d, where d is the capped exponential delay."""

    FULL = "full"
    EQUAL = "equal"
    NONE = "none"


class SlidingWindowType(StrEnum):
    """What a circuit breaker's sliding window holds: the last N calls, or the calls of the
    last N seconds (resilience4j's `slidingWindowType`)."""

    COUNT_BASED = "count_based"
    TIME_BASED = "time_based"


class TimeoutAction(StrEnum):
    """What the servers do with a request whose timeout fired."""

    KEEP_WORKING = "keep_working"
    CANCEL = "cancel"


class DrawScope(StrEnum):
    """How often a draw that describes a request is made: once for the request, whose
    retries keep it, or again for each attempt."""

    REQUEST = "request"
    ATTEMPT = "attempt"


class WorkInProgress(StrEnum):
    """What a server's failure does to the requests on it."""

    RESUME = "resume"
    """They wait for the repair and carry on; a CPU burst resumes its remaining time."""
    LOSE = "lose"
    """They all fail at once (`server_failure`), letting go of what they hold."""


class WhenDown(StrEnum):
    """What becomes of a request that reaches a server (or a balancer) with nowhere up."""

    WAIT = "wait"
    """It waits until a server is back up."""
    REJECT = "reject"
    """It is rejected at once."""


class ScalingMetric(StrEnum):
    """What a horizontal autoscaler reads from the replicas of its group."""

    CPU_UTILISATION = "cpu_utilisation"
    """Busy core-seconds over core-seconds in the last sync period, per replica."""
    IN_FLIGHT_REQUESTS = "in_flight_requests"
    """Requests admitted by a replica and not yet sent on, at the tick."""


class ScalingPolicyType(StrEnum):
    """How a scaling policy bounds the change in one period (Kubernetes' `Pods`, `Percent`)."""

    PODS = "pods"
    """At most `value` replicas."""
    PERCENT = "percent"
    """At most `value` per cent of the replicas at the start of the period."""


class SelectPolicy(StrEnum):
    """Which of several scaling policies applies (Kubernetes' `selectPolicy`)."""

    MAX = "max"
    """The one that allows the largest change."""
    MIN = "min"
    """The one that allows the smallest change."""
    DISABLED = "disabled"
    """No change in this direction."""


class EventKind(StrEnum):
    """Marks that open and close an injected event window."""

    SERVER_DOWN = "server_down"
    SERVER_UP = "server_up"
    NETWORK_SPIKE_START = "network_spike_start"
    NETWORK_SPIKE_END = "network_spike_end"
    SERVER_SLOWDOWN_START = "server_slowdown_start"
    SERVER_SLOWDOWN_END = "server_slowdown_end"
    EDGE_SLOWDOWN_START = "edge_slowdown_start"
    EDGE_SLOWDOWN_END = "edge_slowdown_end"


class SlowdownScope(StrEnum):
    """The step times of a server a slowdown multiplies."""

    CPU = "cpu"
    IO = "io"
    BOTH = "both"


class SampledMetric(StrEnum):
    """Time series sampled every `sample_period_s`."""

    READY_QUEUE_LEN = "ready_queue_len"
    EVENT_LOOP_IO_SLEEP = "event_loop_io_sleep"
    RAM_IN_USE = "ram_in_use"
    EDGE_CONCURRENT_CONNECTION = "edge_concurrent_connection"
    POOL_IN_USE = "pool_in_use"
    POOL_WAITING = "pool_waiting"


class EventMetric(StrEnum):
    """Metrics recorded per request rather than sampled."""

    RQS_CLOCK = "rqs_clock"
    LLM_COST = "llm_cost"


# Defaults and bounds shared with AsyncFlow, so that its files give the same answers.
DEFAULT_SIMULATION_TIME_S = 3600
MIN_SIMULATION_TIME_S = 5
DEFAULT_USER_SAMPLING_WINDOW_S = 60
MIN_USER_SAMPLING_WINDOW_S = 1
MAX_USER_SAMPLING_WINDOW_S = 120
DEFAULT_SAMPLE_PERIOD_S = 0.01
MIN_SAMPLE_PERIOD_S = 0.001
MAX_SAMPLE_PERIOD_S = 0.1
DEFAULT_DROPOUT_RATE = 0.01
DEFAULT_CPU_CORES = 1
DEFAULT_RAM_MB = 1024
MIN_RAM_MB = 256

# Bounds of this engine, beyond which a number validates but cannot be simulated:
# floats overflow, arrays are allocated per second of the horizon, sums of weights
# reach infinity. Each is far above any system a scenario models.
MAX_SIMULATION_TIME_S = 31_536_000
"""One year: the engine keeps one completion counter per simulated second."""
MAX_DURATION_S = 31_536_000
"""Longest step duration, edge latency or spike, and the largest mean of a random one."""
MAX_SLOWDOWN_FACTOR = 1000
"""Largest factor a slowdown multiplies step times or latencies by."""
MAX_CPU_CORES = 1024
MAX_REPLICAS = 1000
"""Most replicas of one server (`replicas`): each is a server of its own in the run."""
MAX_CAPACITY_CHANGES = 10_000
MAX_STABILISATION_WINDOW_S = 3600
"""Longest stabilisation window of an autoscaler (Kubernetes' limit)."""
MAX_POLICY_PERIOD_S = 1800
"""Longest period of a scaling policy (Kubernetes' limit)."""
MAX_SCALING_POLICIES = 10
"""Most policies of one scaling direction."""
MAX_AUTOSCALER_TICKS = 10_000
"""Sync ticks an autoscaler keeps for the results (the first ones): a day at 15 s is 5,760."""
MIN_FAILURE_CYCLE_S = 1e-3
"""Smallest mean time to failure plus mean time to repair: below, failures and repairs
would outnumber everything else the engine schedules."""
"""Most entries of one server's `capacity_schedule`."""
MAX_RAM_MB = 1_073_741_824
"""One pebibyte, in megabytes; also the largest `necessary_ram` of a step."""
MAX_POOL_SIZE = 100_000
"""Largest connection pool, `db_connection_pool` or one of `connection_pools`."""
MAX_ADMISSION_LIMIT = 100_000_000
"""Largest `max_ready_queue` or `max_concurrency`: beyond, the cap is never reached."""
MAX_EVENT_LOOP_COST_S = 1.0
"""Largest `per_wakeup_s` or `per_callback_s` of a server's `event_loop`: an event loop
that spends a second of CPU per wake-up is a unit mistake (milliseconds for seconds)."""
MAX_ATTEMPTS = 100
"""Most attempts of one request or sub-request under a retry policy (`max_attempts`)."""
MAX_RETRY_TOKENS = 1_000_000
"""Largest `max_tokens` of a retry budget."""
MAX_RATE_PER_S = 1_000_000_000
"""Largest token rate of a balancer's `rate_limit`."""
MAX_BREAKER_WINDOW = 1_000_000
"""Largest `sliding_window_size`, `minimum_number_of_calls` or half-open trial count."""
MAX_ACTIVE_USERS = 1_000_000_000
MAX_REQUESTS_PER_MINUTE_PER_USER = 1_000_000
MAX_ARRIVAL_RATE_PER_S = 1_000_000_000
"""Largest rate of an arrival-rate schedule, in requests per second."""
MAX_SCHEDULE_POINTS = 100_000
"""Most points of a rate or user schedule (a trace of one point a minute for 69 days)."""
MAX_CLOSED_USERS = 100_000
"""Most users of a closed workload: each is a process of its own."""
MAX_WEIGHT = 1_000_000
"""Largest weight of an endpoint (`probability`) or of a server behind a balancer."""
MAX_RV_MEAN = 1_000_000_000
"""Largest mean of any random variable; its field may bound it lower."""
MAX_RV_VARIANCE = 1e18
"""Largest variance of any random variable: a standard deviation of 10⁹."""

# Ids and labels appear in paths, file names, charts and database columns: they are
# short and readable. Ids fit the `component` column (255 characters) with room to spare.
MAX_ID_LENGTH = 64
ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
"""Letters, digits and `_ . : -`."""
MAX_ENDPOINT_NAME_LENGTH = 128
ENDPOINT_NAME_PATTERN = r"^[A-Za-z0-9_.:/{}-]+( [A-Za-z0-9_.:/{}-]+)*$"
"""A route such as `/orders/{id}` or `GET /orders`: the id characters, `/ { }` and single spaces."""

DEFAULT_MAX_RUN_MEMORY_MB = 2048
"""The resident memory, in MB, one run may add to its process unless configured otherwise."""
MIN_RUN_MEMORY_MB = 16
"""The smallest run memory budget: below it the interpreter's own noise would stop runs."""
