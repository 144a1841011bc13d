"""The routes the tests build again and again, as whole scenario documents.

`direct`: generator -> client -> entry server -> client, with further servers
reached only by calls. `balanced`: generator -> client -> load balancer ->
each server -> client. Edges are named `source-target` and, unless told, are
fixed 1 ms delays that drop nothing.
"""

from typing import Any

from support.documents import Amount, Document, balancer, edge, route, scenario_document

__all__ = ["balanced", "direct"]


def direct(
    workload: Document,
    servers: list[Document],
    *,
    horizon_s: float,
    latency: Amount = 0.001,
    dropout: float | None = 0.0,
    edges: list[Document] | None = None,
    **options: Any,
) -> Document:
    """gen -> client -> the first of `servers` -> client, then `edges` (calls between servers).

    `options` go to `scenario_document` (`settings`, `events`, `seed`, further nodes).
    """
    entry = servers[0]["id"]
    network = route("gen", "client", entry, "client", latency=latency, dropout=dropout)
    return scenario_document(
        workload, servers, network + (edges or []), horizon_s=horizon_s, **options
    )


def balanced(
    workload: Document,
    servers: list[Document],
    *,
    horizon_s: float,
    algorithm: str | None = None,
    latency: Amount = 0.001,
    dropout: float | None = 0.0,
    balancer_options: Document | None = None,
    **options: Any,
) -> Document:
    """gen -> client -> lb -> each of `servers` -> client; `algorithm` None is round robin.

    `balancer_options` are further balancer fields (`weights`); `options` go to
    `scenario_document` (`settings`, `events`, `seed`).
    """
    ids = [s["id"] for s in servers]
    network = route("gen", "client", "lb", latency=latency, dropout=dropout)
    network += [edge("lb", s, latency=latency, dropout=dropout) for s in ids]
    network += [edge(s, "client", latency=latency, dropout=dropout) for s in ids]
    return scenario_document(
        workload,
        servers,
        network,
        horizon_s=horizon_s,
        load_balancer=balancer(*ids, algorithm=algorithm, **(balancer_options or {})),
        **options,
    )
