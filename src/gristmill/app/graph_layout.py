"""Lay out a task DAG in layers (pure Python; the graph view only draws the result).

Layers come from longest-path levels; within a layer nodes are ordered by a few
barycentre sweeps to reduce crossings. A fan-out (a declared task with more
instances than ``collapse_above``) becomes one group node unless expanded.
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


def group_node_id(group: str) -> str:
    return f"group:{group}"


def build_layout(order: Sequence[str], deps: Callable[[str], Iterable[str]],
                 groups: Mapping[str, Sequence[str]], expanded: Iterable[str] = (),
                 collapse_above: int = 12) -> Layout:
    """``order``: every task, dependencies first. ``groups``: declared name -> instances."""
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
    edge_set: dict[tuple[str, str], None] = {}
    for n in order:
        me = node_of[n]
        best = layer.get(me, 0)
        for d in deps(n):
            src = node_of.get(d)
            if src is None or src == me:
                continue
            edge_set[(src, me)] = None
            best = max(best, layer.get(src, 0) + 1)
        layer[me] = best
    edges = tuple(edge_set)

    node_ids = list(members)          # first-appearance (topological) order
    layers: dict[int, list[str]] = {}
    for nid in node_ids:
        layers.setdefault(layer[nid], []).append(nid)
    _order_layers(layers, edges)

    pos: dict[str, tuple[float, float]] = {}
    tallest = max((len(v) for v in layers.values()), default=0)
    pitch = NODE_H + GAP_Y
    for li, ids in layers.items():
        offset = (tallest - len(ids)) * pitch / 2
        for i, nid in enumerate(ids):
            pos[nid] = (li * (NODE_W + GAP_X), offset + i * pitch)

    nodes = {}
    for nid in node_ids:
        ms = tuple(members[nid])
        g = group_name.get(nid, "")
        label = f"{g}  ×{len(ms)}" if g else short_name(nid)
        nodes[nid] = Node(nid, label, ms, layer[nid], g)
    n_layers = (max(layers) + 1) if layers else 0
    return Layout(nodes, pos, edges, node_of,
                  width=max(n_layers * (NODE_W + GAP_X) - GAP_X, 0.0),
                  height=max(tallest * pitch - GAP_Y, 0.0))


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
