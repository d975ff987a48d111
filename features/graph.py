"""Weighted PageRank over engagement graphs, as narwhals joins and group-bys.

Several graphs are ranked at once: every edge and node carries a `graph` key (a network name, or
`all` for the cross-network graph), and every step groups by it. A step is the textbook one with
uniform teleport and the mass of dangling nodes (no out-edges) spread uniformly:

    rank'(v) = (1 - d) / N + d * (sum over edges u->v of rank(u) * w(u,v) / out(u) + dangling / N)

Ranks of a graph sum to 1. The caller's engine pins each iteration (`materialize`), so a plan
never grows with the number of iterations.
"""

from __future__ import annotations

from collections.abc import Callable

import narwhals as nw

Materialize = Callable[[nw.LazyFrame], nw.LazyFrame]


def transition_edges(edges: nw.LazyFrame) -> tuple[nw.LazyFrame, nw.LazyFrame]:
    """Edges (src_idx, dst_idx, weight) on the dense node index -> (src_idx, dst_idx, p) with
    p = weight / out-weight of src, and the out-weights (src_idx, out_weight)."""
    out = edges.group_by("src_idx").agg(nw.col("weight").sum().alias("out_weight"))
    moves = edges.join(out, on="src_idx").select(
        "src_idx", "dst_idx", (nw.col("weight") / nw.col("out_weight")).alias("p")
    )
    return moves, out


def graph_nodes(edges: nw.LazyFrame, nodes: nw.LazyFrame) -> nw.LazyFrame:
    """Every node of every graph: the given ones and every edge end, with 1/N of its graph."""
    sources = edges.select("graph", nw.col("src").alias("node")).unique(["graph", "node"])
    targets = edges.select("graph", nw.col("dst").alias("node")).unique(["graph", "node"])
    ends = nw.concat([nodes.select("graph", "node"), sources, targets], how="vertical").unique(
        ["graph", "node"]
    )
    sizes = ends.group_by("graph").agg(nw.len().cast(nw.Float64).alias("n_nodes"))
    return ends.join(sizes, on="graph").with_columns((1.0 / nw.col("n_nodes")).alias("inv_n"))


def pagerank_step(
    ranks: nw.LazyFrame,
    moves: nw.LazyFrame,
    nodes: nw.LazyFrame,
    dangling: nw.LazyFrame,
    damping: float,
) -> nw.LazyFrame:
    """One power iteration on dense node indices: ranks (idx, rank) -> (idx, rank)."""
    flow = (
        moves.join(ranks.rename({"idx": "src_idx"}), on="src_idx")
        .with_columns((nw.col("p") * nw.col("rank")).alias("flow"))
        .group_by("dst_idx")
        .agg(nw.col("flow").sum())
        .rename({"dst_idx": "idx"})
    )
    lost = (
        dangling.join(ranks, on="idx")
        .group_by("graph")
        .agg(nw.col("rank").sum().alias("dangling_mass"))
    )
    return (
        nodes.join(flow, on="idx", how="left")
        .join(lost, on="graph", how="left")
        .select(
            "idx",
            (
                (1.0 - damping) * nw.col("inv_n")
                + damping
                * (
                    nw.col("flow").fill_null(0.0)
                    + nw.col("dangling_mass").fill_null(0.0) * nw.col("inv_n")
                )
            ).alias("rank"),
        )
    )


def weighted_pagerank(
    edges: nw.LazyFrame,
    nodes: nw.LazyFrame,
    *,
    damping: float,
    iterations: int,
    materialize: Materialize,
) -> nw.LazyFrame:
    """PageRank of every node of every graph: (graph, node, rank, n_nodes).

    edges: (graph, src, dst, weight>0), repeated edges add up; nodes: (graph, node), nodes
    that must be ranked even without edges (they keep the teleport share). Iterations run on a
    dense index of (graph, node), so each step joins and groups on one integer column.
    `materialize` must compute its frame (the engine's): each step reads the previous ranks
    twice, so an unpinned lazy plan would double with every iteration."""
    indexed = materialize(
        graph_nodes(edges, nodes).with_row_index("idx", order_by=["graph", "node"])
    )
    index = indexed.select("graph", "node", "idx")
    # edges on the dense index first: the out-weights and the dangling nodes then group and
    # join on one integer column, not on (graph, node)
    indexed_edges = materialize(
        edges.join(index.rename({"node": "src", "idx": "src_idx"}), on=["graph", "src"])
        .join(index.rename({"node": "dst", "idx": "dst_idx"}), on=["graph", "dst"])
        .select("src_idx", "dst_idx", "weight")
    )
    moves, out = transition_edges(indexed_edges)
    moves = materialize(moves)
    dangling = materialize(
        indexed.join(out.select(nw.col("src_idx").alias("idx")), on="idx", how="anti").select(
            "idx", "graph"
        )
    )
    step_nodes = indexed.select("idx", "graph", "inv_n")
    ranks = indexed.select("idx", nw.col("inv_n").alias("rank"))
    for _ in range(iterations):
        ranks = materialize(pagerank_step(ranks, moves, step_nodes, dangling, damping))
    return indexed.join(ranks, on="idx").select("graph", "node", "rank", "n_nodes")
