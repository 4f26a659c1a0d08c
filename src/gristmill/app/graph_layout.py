"""Lay out a task DAG in layers (pure Python; the graph view only draws the result).

Layers come from longest-path levels; within a layer nodes are ordered by a few
barycentre sweeps to reduce crossings. A fan-out (a declared task with more
instances than ``collapse_above``) becomes one group node unless expanded.

An edge that spans several layers gets a waypoint in each layer it passes (a
free slot, ordered with the layer's nodes), so it runs between the boxes, never
across one. A layer of more than ``WRAP_ABOVE`` nodes (an expanded fan-out of
thousands) is wrapped into a block of columns, so the whole graph keeps a shape
that fits a window. Edges that are only ``after`` (order, no file) are kept
apart in ``order_only`` so the view can draw them dashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from .names import short_name

NODE_W = 168.0
NODE_H = 34.0
GAP_X = 70.0
GAP_Y = 14.0
SWEEPS = 4
WRAP_ABOVE = 60          # a layer taller than this becomes a block of columns
MAX_WAYPOINTS = 4_000    # beyond this many, long edges are drawn straight (no routing)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    label: str
    members: tuple[str, ...]
    layer: int
    group: str = ""            # the declared name when this node stands for a fan-out

    @property
    def is_group(self) -> bool:
        return bool(self.group)


@dataclass(frozen=True)
class Layout:
    nodes: Mapping[str, Node]
    pos: Mapping[str, tuple[float, float]]     # top-left corner of each node
    edges: tuple[tuple[str, str], ...]         # (from node, to node), deduplicated
    node_of: Mapping[str, str]                 # task name -> node id
    width: float
    height: float
    # (from, to) -> the centre-left points of the free slots the edge passes through
    routes: Mapping[tuple[str, str], tuple[tuple[float, float], ...]] = None  # type: ignore[assignment]
    order_only: frozenset = frozenset()       # edges that only order (every task pair is ``after``)


def group_node_id(group: str) -> str:
    return f"group:{group}"


def build_layout(order: Sequence[str], deps: Callable[[str], Iterable[str]],
                 groups: Mapping[str, Sequence[str]], expanded: Iterable[str] = (),
                 collapse_above: int = 12,
                 order_only: Callable[[str], Iterable[str]] | None = None) -> Layout:
    """``order``: every task, dependencies first. ``groups``: declared name -> instances.
    ``order_only(task)``: those of its dependencies it only runs after (no file between)."""
    expanded = set(expanded)
    node_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    group_name: dict[str, str] = {}
    for group, names in groups.items():
        if len(names) > collapse_above and group not in expanded:
            nid = group_node_id(group)
            group_name[nid] = group
            for n in names:
                node_of[n] = nid
    for n in order:
        nid = node_of.setdefault(n, n)
        members.setdefault(nid, []).append(n)

    # Longest-path layers on the collapsed graph, walking tasks in topological order.
    layer: dict[str, int] = {}
    edge_set: dict[tuple[str, str], bool] = {}      # edge -> it carries a file (not only after)
    get_node, get_layer = node_of.get, layer.get
    for n in order:
        me = node_of[n]
        ds = deps(n)
        if not ds:
            if me not in layer:
                layer[me] = 0
            continue
        best = get_layer(me, 0)
        only = order_only(n) if order_only is not None else ()
        for d in ds:
            src = get_node(d)
            if src is None or src == me:
                continue
            key = (src, me)
            if not edge_set.get(key, False):
                edge_set[key] = d not in only
            up = get_layer(src, 0) + 1
            if up > best:
                best = up
        layer[me] = best
    edges = tuple(edge_set)
    dashed = frozenset(e for e, data in edge_set.items() if not data)

    node_ids = list(members)          # first-appearance (topological) order
    layers: dict[int, list[str]] = {}
    for nid in node_ids:
        layers.setdefault(layer[nid], []).append(nid)
    wrapped = {li for li, ids in layers.items() if len(ids) > WRAP_ABOVE}

    # Waypoints: one free slot per layer a long edge passes (none through a wrapped layer).
    chains: dict[tuple[str, str], list[str]] = {}
    sorting_edges: list[tuple[str, str]] = []
    spans = sum(layer[b] - layer[a] - 1 for a, b in edges)
    for a, b in edges:
        la, lb = layer[a], layer[b]
        if lb - la > 1 and spans <= MAX_WAYPOINTS and not any(
                li in wrapped for li in range(la + 1, lb)):
            prev = a
            chain = []
            for li in range(la + 1, lb):
                w = f"\0{a}\0{b}\0{li}"
                layers[li].append(w)
                chain.append(w)
                sorting_edges.append((prev, w))
                prev = w
            sorting_edges.append((prev, b))
            chains[(a, b)] = chain
        else:
            sorting_edges.append((a, b))
    _order_layers(layers, sorting_edges)

    pos: dict[str, tuple[float, float]] = {}
    pitch = NODE_H + GAP_Y
    shape: dict[int, tuple[int, int]] = {}          # layer -> (columns, rows)
    for li, ids in layers.items():
        if li in wrapped:
            cols = max(1, round((len(ids) * pitch / (NODE_W + GAP_X)) ** 0.5))
            shape[li] = (cols, -(-len(ids) // cols))
        else:
            shape[li] = (1, len(ids))
    tallest = max((rows for _, rows in shape.values()), default=0)
    x = 0.0
    n_layers = (max(layers) + 1) if layers else 0
    for li in range(n_layers):
        ids = layers.get(li, [])
        cols, rows = shape.get(li, (1, 0))
        offset = (tallest - rows) * pitch / 2
        for i, nid in enumerate(ids):
            c, r = divmod(i, rows) if rows else (0, 0)
            pos[nid] = (x + c * (NODE_W + GAP_X / 2), offset + r * pitch)
        x += cols * (NODE_W + GAP_X / 2) + GAP_X / 2 if cols > 1 else NODE_W + GAP_X
    routes = {e: tuple((pos[w][0], pos[w][1] + NODE_H / 2) for w in chain)
              for e, chain in chains.items()}
    for chain in chains.values():
        for w in chain:
            del pos[w]

    nodes = {}
    for nid in node_ids:
        ms = tuple(members[nid])
        g = group_name.get(nid, "")
        label = f"{g}  ×{len(ms)}" if g else short_name(nid)
        nodes[nid] = Node(nid, label, ms, layer[nid], g)
    return Layout(nodes, pos, edges, node_of,
                  width=max(x - GAP_X, 0.0),
                  height=max(tallest * pitch - GAP_Y, 0.0),
                  routes=routes, order_only=dashed)


def _order_layers(layers: dict[int, list[str]], edges: Sequence[tuple[str, str]]) -> None:
    """Barycentre sweeps, down then up, in place."""
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for a, b in edges:
        succs.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)
    keys = sorted(layers)
    index = {nid: i for ids in layers.values() for i, nid in enumerate(ids)}

    def sweep(sequence: list[int], neighbours: dict[str, list[str]]) -> None:
        for li in sequence:
            ids = layers[li]

            def key(nid: str, _ids=ids) -> float:
                ns = neighbours.get(nid)
                if not ns:
                    return float(index[nid])
                return sum(index[x] for x in ns) / len(ns)
            ids.sort(key=key)
            for i, nid in enumerate(ids):
                index[nid] = i

    for k in range(SWEEPS):
        if k % 2 == 0:
            sweep(keys[1:], preds)
        else:
            sweep(list(reversed(keys[:-1])), succs)
