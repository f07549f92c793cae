"""Compute a small part of a large lazy stack without the rest of its graph (pure; dask only).

``dask.highlevelgraph.HighLevelGraph.cull`` walks the layers from the output down and culls each to
the keys still needed; once none are needed it keeps every remaining layer *whole* (dask 2026.8; the
loop's ``if keys_set:`` has no ``else: continue``).  A window of date 0 of a ``(time, band, y, x)``
stack is such a case: the layers of the later dates come after date 0's in the layers' order, so all
of them stay in the graph, and ``dask.compute`` converts, fuses and orders every one of their tasks.
At 200 000 px a side (38 416 blocks a band) that was 307 000 tasks and 14 s for each call of dask that
read a few blocks of the first date, against 0.5 s for the last date
(``benchmarks/coregister_sparse.py``).

:func:`culled` culls correctly: a layer none of whose keys is needed is left out.  :func:`compute` is
``dask.compute`` of arrays culled together onto one graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.core import flatten
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer


def _layers_top_down(dependencies: Mapping[str, set[str]]) -> list[str]:
    """The layers' names, each before every layer it depends on (Kahn's algorithm, deterministic)."""
    users: dict[str, int] = dict.fromkeys(dependencies, 0)
    for deps in dependencies.values():
        for d in deps:
            users[d] = users.get(d, 0) + 1
    ready = sorted(name for name, n in users.items() if n == 0)
    order: list[str] = []
    while ready:
        name = ready.pop()
        order.append(name)
        for d in sorted(dependencies.get(name, ())):
            users[d] -= 1
            if users[d] == 0:
                ready.append(d)
    return order


def _holds(name: str, layer: Any, key: Any) -> bool:
    """Whether ``layer`` (named ``name``) computes ``key``: a materialised layer's own tasks, else (a
    blockwise or overlap layer, whose keys listed would be built) by dask's naming, ``(name, *block)``."""
    if isinstance(layer, MaterializedLayer):
        return key in layer.mapping
    return (key[0] if isinstance(key, tuple) and key else key) == name


class _Keys:
    """``key in`` a layer being culled or the layers it depends on: all its cull asks of the graph's keys,
    answered without listing them (dask lists every key of the graph, and builds each overlap layer
    to do so: 3.2 s and 212 MiB for a read of a reference date beside a warped one).  The layer itself
    is asked for its tasks (an overlap layer's inner tasks are named otherwise; it is built to be culled
    anyway); what it reads of the others are their outputs (:func:`_holds`)."""

    def __init__(self, layer: Any, reads: list[tuple[str, Any]]) -> None:
        self._layer, self._reads = layer, reads

    def __contains__(self, key: object) -> bool:
        try:
            if key in self._layer:
                return True
        except TypeError:  # not hashable: not a key
            return False
        return any(_holds(name, layer, key) for name, layer in self._reads)


def _cull(hlg: HighLevelGraph, keys: set[Any], exact: bool) -> tuple[dict[str, Any], set[Any]]:
    """The layers of ``hlg`` culled to ``keys``, and the keys no layer was found to compute (none when
    the graph is whole).  ``exact``: ask each layer for its keys (as dask does) instead of :func:`_holds`."""
    every = hlg.get_all_external_keys() if exact else None
    layers: dict[str, Any] = {}
    for name in _layers_top_down(hlg.dependencies):
        if not keys:
            break
        layer = hlg.layers[name]
        if exact:
            outputs = layer.get_output_keys()
            own = {k for k in keys if k in outputs}
        else:
            own = {k for k in keys if _holds(name, layer, k)}
        if not own:
            continue
        reads = every if every is not None else _Keys(layer, [(d, hlg.layers[d]) for d in hlg.dependencies.get(name, ())])
        # only this layer's own keys: a layer's cull keeps itself whole when as many keys as it has are asked
        layer, deps = layer.cull(own, reads)  # type: ignore[arg-type]
        needed = set().union(*deps.values()) if deps else set()
        keys = (keys - own - set(deps)) | (needed - set(deps))
        layers[name] = layer
    return layers, keys


def culled(*arrays: da.Array) -> list[da.Array]:
    """``arrays`` on one graph holding only the layers, and in them only the tasks, their blocks need.

    The same blocks as each array (same name, chunks, dtype and meta), computed by the same tasks.  The
    arrays share the one culled graph, so they can be computed together; they are meant to be computed
    (or stored) at once, by themselves: the layers keep their names (which blockwise layers refer to
    each other by), so merged with another graph of the same layers one copy would replace the other.
    """
    if not arrays:
        return []
    hlg = HighLevelGraph.merge(*[a.__dask_graph__() for a in arrays])
    keys = set(flatten([a.__dask_keys__() for a in arrays]))
    layers, missed = _cull(hlg, set(keys), exact=False)
    if missed:  # a layer whose keys are not named after it: ask every layer, as dask does
        layers, _ = _cull(hlg, set(keys), exact=True)
    graph = HighLevelGraph(layers, {name: {d for d in hlg.dependencies[name] if d in layers} for name in layers})
    return [da.Array(graph, a.name, a.chunks, meta=a._meta) for a in arrays]


def compute(*values: Any, **kwargs: Any) -> tuple[Any, ...]:
    """``dask.compute`` of ``values``, its dask arrays on one graph culled by :func:`culled`."""
    lazy = [k for k, v in enumerate(values) if isinstance(v, da.Array)]
    out = list(values)
    for k, arr in zip(lazy, culled(*[values[k] for k in lazy]), strict=True):
        out[k] = arr
    return dask.compute(*out, **kwargs)


def values(x: Any) -> np.ndarray:
    """The values of ``x`` (a DataArray, dask or numpy array): a lazy one computed by :func:`compute`."""
    data = x.data if hasattr(x, "dims") else x  # a DataArray's (a numpy array's .data is a buffer)
    return np.asarray(compute(data)[0] if isinstance(data, da.Array) else data)


__all__ = ["compute", "culled", "values"]
