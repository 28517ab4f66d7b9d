"""Operator vocabulary and per-node features of a computation graph (see ``raynas.graph``).

Every traced operator is mapped to one name of the fixed vocabulary :data:`OP_TYPES`, so a
predictor trained on graphs of one space reads graphs of any other space (or a user's own
model) in the same terms.  Numeric features are per sample (batch dimension dropped):

* ``Hin, Win, Cin`` / ``Hout, Wout, Cout``: shape of the first tensor input / of the output,
  read as ``N x C x H x W``; a 3-D tensor ``N x C x L`` has ``H = L, W = 1``, a 2-D tensor
  (after flatten) has ``H = W = 1``, extra spatial dims are folded into ``H``.
* ``kernel, stride, groups, dilation``: the largest entry of the operator's setting, and 1 for
  operators without one (an elementwise op acts like a 1x1 kernel with stride 1).
* ``flops``: multiply-adds for conv (``Cout*Hout*Wout * Cin/groups * k*k``), linear and matmul;
  output elements times window size for local pooling; input elements for global pooling
  and reductions; output elements for normalisation, activations and elementwise arithmetic;
  0 for data movement (reshape, slice, cat, pad, identity, dropout, zero) and opaque ops.
* ``params``: parameters owned by the operator, each parameter counted once, at its first use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from torch import nn
from torch.nn.modules import batchnorm, conv, dropout, instancenorm, padding, pooling

OP_TYPES: tuple[str, ...] = (
    "input", "output",
    "conv", "conv_transpose", "linear", "matmul",
    "bn", "norm",
    "relu", "sigmoid", "tanh", "gelu", "softmax", "activation",
    "add", "mul", "cat",
    "pool_max", "pool_avg", "global_pool", "reduce",
    "reshape", "slice", "upsample", "pad",
    "identity", "dropout", "zero",
    "other",
)  # fmt: skip
OP_INDEX: dict[str, int] = {op: i for i, op in enumerate(OP_TYPES)}

NUMERIC_FEATURES: tuple[str, ...] = (
    "Hin", "Hout", "Win", "Wout", "Cin", "Cout",
    "kernel", "stride", "groups", "dilation", "flops", "params",
)  # fmt: skip
NUM_NODE_FEATURES: int = len(OP_TYPES) + len(NUMERIC_FEATURES)

Shape = tuple[int, ...]

# Lookup follows the class's MRO, so subclasses (UpsamplingNearest2d, ZeroPad2d, a user's
# Conv2d subclass) inherit the op type of their standard base.
_MODULE_OPS: dict[type, str] = {
    conv._ConvTransposeNd: "conv_transpose",
    conv._ConvNd: "conv",
    nn.Linear: "linear",
    nn.Bilinear: "linear",
    batchnorm._BatchNorm: "bn",
    instancenorm._InstanceNorm: "norm",
    nn.LayerNorm: "norm",
    nn.GroupNorm: "norm",
    nn.RMSNorm: "norm",
    nn.LocalResponseNorm: "norm",
    nn.ReLU: "relu",
    nn.ReLU6: "relu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.GELU: "gelu",
    nn.Softmax: "softmax",
    nn.LogSoftmax: "softmax",
    **dict.fromkeys(
        (nn.Hardtanh, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.ELU, nn.CELU, nn.SELU,
         nn.LeakyReLU, nn.PReLU, nn.Mish, nn.Softplus, nn.GLU),
        "activation",
    ),  # fmt: skip
    pooling._MaxPoolNd: "pool_max",
    pooling._AdaptiveMaxPoolNd: "pool_max",
    pooling._AvgPoolNd: "pool_avg",
    pooling._AdaptiveAvgPoolNd: "pool_avg",
    nn.Flatten: "reshape",
    nn.Unflatten: "reshape",
    nn.Upsample: "upsample",
    padding._ConstantPadNd: "pad",
    padding._ReflectionPadNd: "pad",
    padding._ReplicationPadNd: "pad",
    padding._CircularPadNd: "pad",
    nn.Identity: "identity",
    dropout._DropoutNd: "dropout",
}


def _names(op: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, op)


# Functions (``torch.cat``, ``F.relu``, ``operator.add``) and tensor methods (``x.view``) are
# matched by name, so ``torch.flatten(x, 1)`` and ``x.flatten(1)`` become the same operator.
_FUNCTION_OPS: dict[str, str] = {
    **_names("conv", "conv1d", "conv2d", "conv3d"),
    **_names("conv_transpose", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"),
    **_names("linear", "linear"),
    **_names("matmul", "matmul", "mm", "bmm"),
    **_names("bn", "batch_norm"),
    **_names("norm", "layer_norm", "group_norm", "instance_norm", "normalize"),
    **_names("relu", "relu", "relu6"),
    **_names("sigmoid", "sigmoid"),
    **_names("tanh", "tanh"),
    **_names("gelu", "gelu"),
    **_names("softmax", "softmax", "log_softmax"),
    **_names("activation", "silu", "hardswish", "hardsigmoid", "hardtanh", "elu", "celu",
             "selu", "leaky_relu", "prelu", "mish", "softplus", "glu"),  # fmt: skip
    **_names("add", "add", "iadd", "sub", "isub", "rsub"),
    **_names("mul", "mul", "imul", "div", "truediv", "itruediv"),
    **_names("cat", "cat", "concat", "concatenate", "stack"),
    **_names("pool_max", "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d",
             "adaptive_max_pool2d", "adaptive_max_pool3d"),  # fmt: skip
    **_names("pool_avg", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
             "adaptive_avg_pool2d", "adaptive_avg_pool3d"),  # fmt: skip
    **_names("reduce", "mean", "sum", "amax", "amin"),
    **_names("reshape", "flatten", "view", "reshape", "permute", "transpose", "t", "squeeze",
             "unsqueeze", "expand", "expand_as", "view_as", "contiguous"),  # fmt: skip
    **_names("slice", "getitem", "chunk", "split", "narrow", "select", "unbind"),
    **_names("upsample", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear"),
    **_names("pad", "pad"),
    **_names("identity", "clone", "detach", "to", "float", "type_as"),
    **_names("dropout", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout"),
    **_names("zero", "zeros_like", "zero", "new_zeros"),
}

_WINDOW_OPS = frozenset({"pool_max", "pool_avg", "reduce"})
_ELEMENT_FLOP_OPS = frozenset(
    {"bn", "norm", "relu", "sigmoid", "tanh", "gelu", "softmax", "activation", "add", "mul", "upsample"}
)


@dataclass(frozen=True)
class OpInfo:
    """Operator type and the settings that are not visible in the input/output shapes.

    An empty ``kernel`` means "no window of its own": 1 as a feature, or, for pools and
    reductions, the window implied by the shapes (see :func:`resolve`)."""

    op: str
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    groups: int = 1
    dilation: tuple[int, ...] = ()


def module_op(module: nn.Module) -> str | None:
    """Op type of a standard layer, or None for a class the vocabulary does not know."""
    for cls in type(module).__mro__:
        if cls in _MODULE_OPS:
            return _MODULE_OPS[cls]
    return None


def function_op(name: str, args: Sequence[Any]) -> str:
    """Op type of a function / tensor method called ``name``.

    Arithmetic with a literal zero is recognised, because cell-based spaces spell their
    ``none`` op as ``x.mul(0.)`` and Python's ``sum(states)`` starts with ``0 + s``."""
    op = _FUNCTION_OPS.get(name.strip("_"), "other")
    if op in ("add", "mul") and any(_is_literal_zero(a) for a in args):
        return "identity" if op == "add" else "zero"
    return op


def _is_literal_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _tuple(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),)


def module_info(module: nn.Module, op: str) -> OpInfo:
    """Kernel, stride, groups and dilation read from a layer's own settings."""
    if op in ("conv", "conv_transpose"):
        return OpInfo(op, _tuple(module.kernel_size), _tuple(module.stride), module.groups, _tuple(module.dilation))
    if op in ("pool_max", "pool_avg") and hasattr(module, "kernel_size"):
        kernel = _tuple(module.kernel_size)
        return OpInfo(op, kernel, _tuple(module.stride) or kernel, dilation=_tuple(getattr(module, "dilation", 1)))
    return OpInfo(op)


def function_info(name: str, op: str, arg: Callable[[int, str], Any], weight_shape: Shape | None) -> OpInfo:
    """Settings of a functional call; ``arg(position, keyword)`` reads one of its arguments."""
    if op in ("conv", "conv_transpose") and weight_shape is not None:
        dilation_pos = 5 if op == "conv" else 7
        return OpInfo(
            op,
            tuple(weight_shape[2:]),
            _tuple(arg(3, "stride")),
            int(arg(6, "groups") or 1),
            _tuple(arg(dilation_pos, "dilation")),
        )
    if op in ("pool_max", "pool_avg") and not name.startswith("adaptive"):
        kernel = _tuple(arg(1, "kernel_size"))
        return OpInfo(op, kernel, _tuple(arg(2, "stride")) or kernel)
    return OpInfo(op)


def chw(shape: Shape | None) -> tuple[int, int, int]:
    """``(C, H, W)`` of a batched tensor shape (see the module docstring for other ranks)."""
    if shape is None or len(shape) < 2:
        return 1, 1, 1
    spatial = shape[2:]
    if len(spatial) <= 1:
        return shape[1], (spatial[0] if spatial else 1), 1
    return shape[1], math.prod(spatial[:-1]), spatial[-1]


def _numel(shape: Shape | None) -> int:
    return math.prod(shape[1:]) if shape else 1


def resolve(info: OpInfo, in_shape: Shape | None, out_shape: Shape | None) -> OpInfo:
    """Pools and reductions that collapse H x W to 1 x 1 (channels kept) are global pooling;
    adaptive pools and reductions get the window their shapes imply."""
    if info.op not in _WINDOW_OPS:
        return info
    (c_in, h_in, w_in), (c_out, h_out, w_out) = chw(in_shape), chw(out_shape)
    is_global = h_in * w_in > 1 and h_out == w_out == 1 and c_in == c_out
    op = "global_pool" if is_global else info.op
    if info.kernel:
        return OpInfo(op, info.kernel, info.stride, info.groups, info.dilation)
    window = max(math.ceil(h_in / max(h_out, 1)), math.ceil(w_in / max(w_out, 1)))
    return OpInfo(op, (window,), (window,))


def _window_area(kernel: tuple[int, ...], shape: Shape | None) -> int:
    """Elements in a pooling window; a scalar kernel ``k`` covers ``k x k`` in 2-D."""
    if len(kernel) > 1:
        return math.prod(kernel)
    spatial_rank = max(len(shape) - 2, 1) if shape else 1
    return kernel[0] ** spatial_rank


def flops(info: OpInfo, in_shape: Shape | None, out_shape: Shape | None, weight_shape: Shape | None) -> int:
    """Per-sample FLOPs of one operator (conventions in the module docstring)."""
    out_numel, in_numel = _numel(out_shape), _numel(in_shape)
    if info.op == "conv":
        return out_numel * (chw(in_shape)[0] // info.groups) * math.prod(info.kernel)
    if info.op == "conv_transpose":
        return in_numel * (chw(out_shape)[0] // info.groups) * math.prod(info.kernel)
    if info.op in ("linear", "matmul"):
        inner = weight_shape if info.op == "linear" and weight_shape else in_shape
        return out_numel * (inner[-1] if inner else 1)
    if info.op in ("pool_max", "pool_avg"):
        return out_numel * _window_area(info.kernel, out_shape)
    if info.op in ("global_pool", "reduce"):
        return in_numel
    return out_numel if info.op in _ELEMENT_FLOP_OPS else 0


def numeric(info: OpInfo, in_shape: Shape | None, out_shape: Shape | None, flop: int, params: int) -> dict[str, int]:
    """The :data:`NUMERIC_FEATURES` of one node."""
    c_in, h_in, w_in = chw(in_shape)
    c_out, h_out, w_out = chw(out_shape)
    return {
        "Hin": h_in, "Hout": h_out, "Win": w_in, "Wout": w_out, "Cin": c_in, "Cout": c_out,
        "kernel": max(info.kernel, default=1), "stride": max(info.stride, default=1),
        "groups": info.groups, "dilation": max(info.dilation, default=1),
        "flops": flop, "params": params,
    }  # fmt: skip
