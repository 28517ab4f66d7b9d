"""Computation graphs (CG): any ``torch.nn.Module`` as a DAG of primitive operators.

Predictors that read CGs never see a space's own encoding, so they transfer across spaces
and to a user's own model (DESIGN.md, "Computation graph").  :func:`trace` runs torch.fx
symbolic tracing once (standard layers and user-named classes stay opaque leaves), runs the
traced graph once on a zero batch of one to learn every tensor's shape, drops pure
shape arithmetic (``x.size(0)``, ``x.shape[1]``) while keeping the tensor edges that flowed
through it, folds parameters read directly in ``forward`` into the operator that uses them,
and labels each operator with the features of :mod:`raynas.graph_features`.

Node feature layout of :meth:`ComputationGraph.to_pyg` (``x`` has :data:`NUM_NODE_FEATURES`
columns)::

    [ one-hot over OP_TYPES (29) | log1p of Hin, Hout, Win, Wout, Cin, Cout,
                                   kernel, stride, groups, dilation, flops, params (12) ]

The model is traced and run in eval mode (its train/eval flags are restored afterwards), so
the graph is the inference graph: branches taken only in training (auxiliary heads) and
their parameters are not part of it.
"""
from __future__ import annotations

import operator
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import networkx as nx
import numpy as np
import torch
from torch import fx, nn
from torch.fx.node import Node, map_arg
from torch_geometric.data import Data

from raynas import graph_features as gf
from raynas.graph_features import NUM_NODE_FEATURES, NUMERIC_FEATURES, OP_INDEX, OP_TYPES

__all__ = ["ComputationGraph", "NUM_NODE_FEATURES", "NUMERIC_FEATURES", "OP_TYPES", "TraceError", "to_pyg", "trace"]

Shape = gf.Shape


class TraceError(ValueError):
    """A module cannot be traced by torch.fx; the message names it and how to make it a leaf."""


@dataclass(frozen=True)
class ComputationGraph:
    """A traced model: ``graph`` has nodes ``0..n-1`` in topological order, each with an
    ``op`` (one of :data:`OP_TYPES`), a ``name`` (module path or fx node name) and the
    :data:`NUMERIC_FEATURES`; ``params`` and ``flops`` are the sums over nodes."""

    graph: nx.DiGraph
    params: int
    flops: int

    @property
    def num_nodes(self) -> int:
        return self.graph.number_of_nodes()

    def op_types(self) -> list[str]:
        return [op for _, op in self.graph.nodes(data="op")]

    def to_pyg(self) -> Data:
        """``Data(x, edge_index, op, params, flops, num_nodes)``; ``x`` as in the module docstring,
        ``op`` the op-type indices, ``params``/``flops`` per-graph counts of shape ``[1]``."""
        nodes = [attrs for _, attrs in self.graph.nodes(data=True)]
        ops = torch.tensor([OP_INDEX[a["op"]] for a in nodes], dtype=torch.long)
        numeric = np.log1p(np.array([[a[k] for k in NUMERIC_FEATURES] for a in nodes], dtype=np.float64))
        x = torch.cat(
            [nn.functional.one_hot(ops, len(OP_TYPES)).float(), torch.from_numpy(numeric).float()], dim=1
        )
        edges = torch.tensor(list(self.graph.edges), dtype=torch.long).reshape(-1, 2).t().contiguous()
        return Data(
            x=x,
            edge_index=edges,
            op=ops,
            params=torch.tensor([self.params]),
            flops=torch.tensor([self.flops]),
            num_nodes=len(nodes),
        )


def trace(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 32, 32),
    leaf_modules: Sequence[type[nn.Module]] = (),
) -> ComputationGraph:
    """Trace ``model`` on an input of ``input_shape`` (batch first) into a :class:`ComputationGraph`.

    ``leaf_modules`` are extra classes kept as single opaque operators (op type ``other``
    unless they subclass a standard layer); use it for modules whose ``forward`` torch.fx
    cannot follow.  Raises :class:`TraceError` naming such a module."""
    shape = _check_input_shape(input_shape)
    leaves = _check_leaf_modules(leaf_modules)
    with _eval_mode(model), _single_thread(), torch.no_grad():
        fx_graph = _symbolic_trace(model, leaves)
        modules = dict(model.named_modules())
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        shapes = _propagate(model, modules, fx_graph, torch.zeros(shape, device=device), shape)
    graph = _build(model, modules, fx_graph, shapes)
    params = sum(p for _, p in graph.nodes(data="params"))
    flops = sum(f for _, f in graph.nodes(data="flops"))
    return ComputationGraph(graph=graph, params=params, flops=flops)


def to_pyg(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 32, 32),
    leaf_modules: Sequence[type[nn.Module]] = (),
) -> Data:
    """``trace(model, input_shape, leaf_modules).to_pyg()``."""
    return trace(model, input_shape, leaf_modules).to_pyg()


# ----------------------------------------------------------------------------- arguments
def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be positive ints, batch first (e.g. (1, 3, 32, 32)); got {input_shape!r}")
    return shape


def _check_leaf_modules(leaf_modules: Sequence[type[nn.Module]]) -> tuple[type[nn.Module], ...]:
    leaves = tuple(leaf_modules)
    bad = [c for c in leaves if not (isinstance(c, type) and issubclass(c, nn.Module))]
    if bad:
        raise ValueError(f"leaf_modules must be nn.Module subclasses (classes, not instances); got {bad!r}")
    return leaves


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (batch-of-one BN needs it); each module's flag is restored."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


@contextmanager
def _single_thread() -> Iterator[None]:
    """One intra-op thread for the duration: batch-of-one kernels are too small to share, and
    on a busy machine the threads' synchronisation costs more than they compute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- tracing
class _LeafTracer(fx.Tracer):
    """fx tracer that keeps standard layers and user-named classes whole, and reports the
    innermost module whose ``forward`` could not be traced."""

    def __init__(self, leaf_types: tuple[type[nn.Module], ...]):
        super().__init__()
        self.leaf_types = leaf_types

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (
            isinstance(m, self.leaf_types)
            or gf.module_op(m) is not None
            or super().is_leaf_module(m, module_qualified_name)
        )

    def call_module(self, m: nn.Module, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return super().call_module(m, forward, args, kwargs)
        except TraceError:
            raise
        except Exception as err:
            raise TraceError(_untraceable_message(self.path_of_module(m), m, err)) from err


def _untraceable_message(path: str, module: nn.Module, err: Exception) -> str:
    cls = type(module)
    return (
        f"torch.fx cannot trace module '{path}' ({cls.__module__}.{cls.__qualname__}): "
        f"{type(err).__name__}: {err}. Its forward probably branches on tensor values or calls "
        f"code fx cannot follow. Mark it as a leaf so it is kept as one opaque operator: "
        f"trace(model, input_shape, leaf_modules=({cls.__name__},))"
    )


def _symbolic_trace(model: nn.Module, leaves: tuple[type[nn.Module], ...]) -> fx.Graph:
    try:
        return _LeafTracer(leaves).trace(model)
    except TraceError:
        raise
    except Exception as err:
        cls = type(model)
        raise TraceError(
            f"torch.fx cannot trace the forward of the model itself ({cls.__module__}.{cls.__qualname__}): "
            f"{type(err).__name__}: {err}. Only submodules can be leaves: move the code that branches on "
            f"tensor values into a submodule and pass its class as leaf_modules=(ThatClass,)"
        ) from err


# ----------------------------------------------------------------------------- shapes
def _propagate(
    model: nn.Module,
    modules: dict[str, nn.Module],
    fx_graph: fx.Graph,
    example: torch.Tensor,
    shape: tuple[int, ...],
) -> dict[Node, Shape | None]:
    """Run the traced graph once; the shape of the first tensor in every node's result
    (None for results without tensors, i.e. shape arithmetic)."""
    env: dict[Node, Any] = {}
    shapes: dict[Node, Shape | None] = {}
    inputs = iter([example])
    for node in fx_graph.nodes:
        args = map_arg(node.args, env.__getitem__)
        kwargs = map_arg(node.kwargs, env.__getitem__)
        try:
            value = _run(model, modules, node, args, kwargs, inputs)
        except Exception as err:
            raise ValueError(
                f"running the traced model on input_shape={shape} failed at {_describe(modules, node)}: "
                f"{type(err).__name__}: {err}"
            ) from err
        env[node] = value
        shapes[node] = _first_shape(value)
    return shapes


def _run(
    model: nn.Module,
    modules: dict[str, nn.Module],
    node: Node,
    args: Any,
    kwargs: dict[str, Any],
    inputs: Iterator[torch.Tensor],
) -> Any:
    if node.op == "placeholder":
        example = next(inputs, None)
        if example is not None:
            return example
        if not args:
            raise ValueError(f"forward argument '{node.target}' has no default; only one input is fed")
        return args[0]
    if node.op == "get_attr":
        return operator.attrgetter(node.target)(model)
    if node.op == "call_module":
        return modules[node.target](*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    return args[0]  # output


def _describe(modules: dict[str, nn.Module], node: Node) -> str:
    if node.op == "call_module":
        return f"module '{node.target}' ({type(modules[node.target]).__name__})"
    return f"{node.op} '{node.name}'"


def _first_shape(value: Any) -> Shape | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return next((s for s in map(_first_shape, value) if s is not None), None)
    if isinstance(value, dict):
        return _first_shape(list(value.values()))
    return None


# ----------------------------------------------------------------------------- DAG
def _build(
    model: nn.Module, modules: dict[str, nn.Module], fx_graph: fx.Graph, shapes: dict[Node, Shape | None]
) -> nx.DiGraph:
    """Operator DAG: shape arithmetic and parameter reads are dropped, the tensor edges that
    ran through them are kept, and their parameters move to their first tensor consumer."""
    graph = nx.DiGraph()
    index: dict[Node, int] = {}
    sources: dict[Node, set[int]] = {}
    carried: dict[Node, int] = defaultdict(int)
    counted: set[int] = set()
    for node in fx_graph.nodes:
        feeds = set().union(*({index[n]} if n in index else sources[n] for n in node.all_input_nodes))
        params = carried.pop(node, 0) + _new_params(model, modules, node, counted)
        if _is_dropped(node, shapes):
            sources[node] = feeds
            if node.users:
                carried[next(iter(node.users))] += params
            continue
        index[node] = len(index)
        graph.add_node(index[node], **_attributes(modules, node, shapes, params))
        graph.add_edges_from((src, index[node]) for src in sorted(feeds))
    return graph


def _is_dropped(node: Node, shapes: dict[Node, Shape | None]) -> bool:
    return node.op == "get_attr" or (node.op != "output" and shapes[node] is None)


def _new_params(model: nn.Module, modules: dict[str, nn.Module], node: Node, counted: set[int]) -> int:
    """Parameters first used by ``node`` (a leaf module's, or one read by ``get_attr``)."""
    if node.op == "call_module":
        candidates = list(modules[node.target].parameters())
    elif node.op == "get_attr":
        value = operator.attrgetter(node.target)(model)
        candidates = [value] if isinstance(value, nn.Parameter) else []
    else:
        return 0
    fresh = [p for p in candidates if id(p) not in counted]
    counted.update(id(p) for p in fresh)
    return sum(p.numel() for p in fresh)


def _attributes(modules: dict[str, nn.Module], node: Node, shapes: dict[Node, Shape | None], params: int) -> dict[str, Any]:
    tensor_inputs = [n for n in node.all_input_nodes if shapes.get(n) is not None]
    data_inputs = [n for n in tensor_inputs if n.op != "get_attr"] or tensor_inputs
    in_shape = shapes[data_inputs[0]] if data_inputs else shapes[node]
    out_shape = shapes[node]
    weight = node.args[1] if node.op == "call_function" and len(node.args) > 1 else None
    weight_shape = shapes.get(weight) if isinstance(weight, Node) else None
    info = gf.resolve(_op_info(modules, node, weight_shape), in_shape, out_shape)
    flops = gf.flops(info, in_shape, out_shape, weight_shape)
    name = node.target if node.op == "call_module" else node.name
    return {"op": info.op, "name": name, **gf.numeric(info, in_shape, out_shape, flops, params)}


def _op_info(modules: dict[str, nn.Module], node: Node, weight_shape: Shape | None) -> gf.OpInfo:
    if node.op == "placeholder":
        return gf.OpInfo("input")
    if node.op == "output":
        return gf.OpInfo("output")
    if node.op == "call_module":
        module = modules[node.target]
        return gf.module_info(module, gf.module_op(module) or "other")
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", str(node.target))
    op = gf.function_op(name, node.args)
    return gf.function_info(name, op, _arg_reader(node), weight_shape)


def _arg_reader(node: Node) -> Callable[[int, str], Any]:
    """``read(position, keyword)``: a literal argument of ``node``, None if absent or computed
    (``F.avg_pool2d(x, x.shape[2:])`` has a computed kernel; its shapes tell the window)."""

    def read(position: int, keyword: str) -> Any:
        value = node.kwargs.get(keyword, node.args[position] if len(node.args) > position else None)
        parts = value if isinstance(value, (tuple, list)) else (value,)
        return None if any(isinstance(v, Node) for v in parts) else value

    return read
