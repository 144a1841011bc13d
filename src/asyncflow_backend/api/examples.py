"""Example scenarios shown in the OpenAPI document and on /docs.

Kept inline rather than read from `example/` so that an installed wheel, which
ships no example files, documents itself the same way.
"""

from typing import Any

import yaml

SMALL_SCENARIO: dict[str, Any] = {
    "rqs_input": {
        "id": "visitors",
        "avg_active_users": {"mean": 20, "distribution": "poisson"},
        "avg_request_per_minute_per_user": {"mean": 30, "distribution": "poisson"},
        "user_sampling_window": 60,
    },
    "topology_graph": {
        "nodes": {
            "client": {"id": "browser"},
            "servers": [
                {
                    "id": "api-1",
                    "server_resources": {"cpu_cores": 1, "ram_mb": 1024},
                    "endpoints": [
                        {
                            "endpoint_name": "/orders",
                            "steps": [
                                {"kind": "initial_parsing", "step_operation": {"cpu_time": 0.002}},
                                {"kind": "ram", "step_operation": {"necessary_ram": 64}},
                                {"kind": "io_db", "step_operation": {"io_waiting_time": 0.012}},
                            ],
                        }
                    ],
                }
            ],
        },
        "edges": [
            {
                "id": "visitors-browser",
                "source": "visitors",
                "target": "browser",
                "latency": {"mean": 0.002, "distribution": "exponential"},
            },
            {
                "id": "browser-api-1",
                "source": "browser",
                "target": "api-1",
                "latency": {"mean": 0.002, "distribution": "exponential"},
            },
            {
                "id": "api-1-browser",
                "source": "api-1",
                "target": "browser",
                "latency": {"mean": 0.002, "distribution": "exponential"},
            },
        ],
    },
    "sim_settings": {"total_simulation_time": 60, "sample_period_s": 0.1},
    "seed": 7,
}
"""About 10 requests/s to one server for 60 simulated seconds."""

SMALL_SCENARIO_YAML = yaml.safe_dump(SMALL_SCENARIO, sort_keys=False)

INVALID_SCENARIO: dict[str, Any] = {
    **SMALL_SCENARIO,
    "topology_graph": {
        **SMALL_SCENARIO["topology_graph"],
        "edges": [
            {**edge, "target": "api-2"} if edge["id"] == "browser-api-1" else edge
            for edge in SMALL_SCENARIO["topology_graph"]["edges"]
        ],
    },
}
"""The small scenario with an edge pointing at a server that does not exist."""

SMALL_EXPERIMENT: dict[str, Any] = {"scenario": SMALL_SCENARIO, "seed": 7, "replications": 2}
"""Two replications of the small scenario."""

SMALL_EXPERIMENT_YAML = yaml.safe_dump(SMALL_EXPERIMENT, sort_keys=False)
