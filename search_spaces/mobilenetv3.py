"""Once-for-All MobileNetV3 space: elastic depth, kernel size and expand ratio.

OFA's ``ofa_mbv3_d234_e346_k357`` space (Cai et al. 2020): five searched stages (24, 40,
80, 112, 160 channels) of up to four MBConv blocks; stage ``s`` uses its first ``d_s`` in
{2, 3, 4} blocks and each block picks a depthwise kernel in {3, 5, 7} and an expand ratio
in {3, 4, 6}.  Stages and blocks are numbered from 1 (stage 2 is the 40-channel stage).

Arch strings are OFA's sub-network setting, 20 kernels, 20 expand ratios (4 per stage,
stage-major) and 5 depths::

    ks=[3,5,7,3,...],e=[4,6,3,3,...],d=[2,3,4,2,3]

and the dict OFA's ``sample_active_subnet`` returns (``{'ks': [...], 'e': [...], 'd': [...]}``)
parses too.  Kernel and expand ratio of a block beyond its stage's depth do not change the
network (OFA carries them all the same), so the canonical key sets them to 3 and 3: archs
that differ only there hash equal.

The flat Tune config has ``stage{s}_depth`` and, for all four blocks of a stage,
``stage{s}_block{b}_kernel`` / ``stage{s}_block{b}_expand``; every combination of domain
values is valid.  There are 3^5 * 9^20 ~ 2.9e21 settings and 7371^5 ~ 2.2e19 distinct
networks, so ``enumerate`` is not available.
"""
from __future__ import annotations

import numbers
import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import networkx as nx

from raynas.arch import Arch
from search_spaces.base import RngLike, SearchSpace, as_rng, check_choice
from search_spaces.registry import register_space
from search_spaces.vocabulary import STAGE_ACTS, STAGE_SE, STAGE_STRIDES, STAGE_WIDTHS

if TYPE_CHECKING:
    from torch import nn


#: (kernels, expand ratios, depths): 20, 20 and 5 ints, OFA's ``ks``, ``e``, ``d``
Spec = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]

KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANDS: tuple[int, ...] = (3, 4, 6)
DEPTHS: tuple[int, ...] = (2, 3, 4)
NUM_STAGES = len(STAGE_WIDTHS)
MAX_DEPTH = max(DEPTHS)
NUM_BLOCKS = NUM_STAGES * MAX_DEPTH
#: settings of the flat config, and distinct networks (unused blocks ignored)
NUM_SETTINGS = len(DEPTHS) ** NUM_STAGES * (len(KERNELS) * len(EXPANDS)) ** NUM_BLOCKS
NUM_ARCHS = sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS) ** NUM_STAGES


def depth_key(stage: int) -> str:
    """Config key of the depth of ``stage`` (0-based index, 1-based name)."""
    return f"stage{stage + 1}_depth"


def block_key(block: int, field: str) -> str:
    """Config key of ``field`` (``kernel`` / ``expand``) of flat block index ``block`` (0..19)."""
    stage, b = divmod(block, MAX_DEPTH)
    return f"stage{stage + 1}_block{b + 1}_{field}"


CONFIG_KEYS: tuple[str, ...] = tuple(
    key
    for s in range(NUM_STAGES)
    for key in (
        depth_key(s),
        *(block_key(s * MAX_DEPTH + b, f) for b in range(MAX_DEPTH) for f in ("kernel", "expand")),
    )
)
RECORD_COLUMNS: tuple[str, ...] = ("ks", "e", "d")
_FIELDS = (("ks", "kernel", NUM_BLOCKS), ("e", "expand", NUM_BLOCKS), ("d", "depth", NUM_STAGES))
_LIST = r"\s*['\"]?{name}['\"]?\s*[=:]\s*\[(?P<{name}>[^\[\]]*)\]\s*"
_SETTING = re.compile(
    r"\s*(?P<brace>\{)?" + ",".join(_LIST.format(name=name) for name, _, _ in _FIELDS) + r"(?(brace)\})\s*"
)
_INT = re.compile(r"\s*\d+\s*")
_TEMPLATE = "ks=[20 kernels in 3,5,7],e=[20 expand ratios in 3,4,6],d=[5 depths in 2,3,4]"


def active(spec: Spec) -> list[bool]:
    """Per flat block index, whether the block is within its stage's depth."""
    depths = spec[2]
    return [b % MAX_DEPTH < depths[b // MAX_DEPTH] for b in range(NUM_BLOCKS)]


def stage_blocks(spec: Spec) -> list[list[tuple[int, int]]]:
    """Per stage, the ``(kernel, expand)`` of its active blocks."""
    ks, es, ds = spec
    return [[(ks[s * MAX_DEPTH + b], es[s * MAX_DEPTH + b]) for b in range(ds[s])] for s in range(NUM_STAGES)]


@register_space("mobilenetv3", aliases=("mbv3", "ofa"))
class MobileNetV3Space(SearchSpace):
    """OFA's MobileNetV3 space.  ``build`` gives the stand-alone OFA sub-network."""

    # ------------------------------------------------------------------ spec hooks
    def _parse_spec(self, text: str) -> Spec:
        match = _SETTING.fullmatch(text)
        if not match:
            raise ValueError(f"MobileNetV3 arch string {text!r} is not an OFA setting; expected {_TEMPLATE}")
        lists = []
        for name, _, _ in _FIELDS:
            body = match.group(name)
            tokens = body.split(",") if body.strip() else []
            if not all(_INT.fullmatch(t) for t in tokens):
                raise ValueError(f"{name}=[{body}] must be a list of ints; expected {_TEMPLATE}")
            lists.append(tuple(int(t) for t in tokens))
        return lists[0], lists[1], lists[2]

    def _format(self, spec: Spec) -> str:
        return ",".join(f"{name}=[{','.join(str(v) for v in values)}]" for (name, _, _), values in zip(_FIELDS, spec))

    def _validate(self, spec: Spec) -> None:
        if not isinstance(spec, tuple) or len(spec) != len(_FIELDS):
            raise ValueError(f"MobileNetV3 spec must be a (ks, e, d) tuple, got {spec!r}")
        for (name, what, length), values in zip(_FIELDS, spec):
            if not isinstance(values, tuple) or len(values) != length:
                raise ValueError(f"{name} needs {length} {what} values (a tuple), got {values!r}")
        for block, (kernel, expand) in enumerate(zip(spec[0], spec[1])):
            _check_int(block_key(block, "kernel"), kernel, KERNELS)
            _check_int(block_key(block, "expand"), expand, EXPANDS)
        for stage, depth in enumerate(spec[2]):
            _check_int(depth_key(stage), depth, DEPTHS)

    def _key(self, spec: Spec) -> str:
        return self._format(self._canonical_spec(spec))

    def _canonical_spec(self, spec: Spec) -> Spec:
        """Blocks beyond their stage's depth set to the first kernel and expand ratio."""
        on = active(spec)
        ks = tuple(int(k) if a else KERNELS[0] for k, a in zip(spec[0], on))
        es = tuple(int(e) if a else EXPANDS[0] for e, a in zip(spec[1], on))
        return ks, es, tuple(int(d) for d in spec[2])

    def _spec_from_config(self, config: Mapping[str, Any]) -> Spec:
        def read(key: str, allowed: tuple[int, ...]) -> int:
            return int(check_choice(key, config[key], allowed))

        ks = tuple(read(block_key(b, "kernel"), KERNELS) for b in range(NUM_BLOCKS))
        es = tuple(read(block_key(b, "expand"), EXPANDS) for b in range(NUM_BLOCKS))
        return ks, es, tuple(read(depth_key(s), DEPTHS) for s in range(NUM_STAGES))

    def _config_from_spec(self, spec: Spec) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for s in range(NUM_STAGES):
            config[depth_key(s)] = spec[2][s]
            for b in range(s * MAX_DEPTH, (s + 1) * MAX_DEPTH):
                config[block_key(b, "kernel")] = spec[0][b]
                config[block_key(b, "expand")] = spec[1][b]
        return config

    # ------------------------------------------------------------------ Tune side
    def tune_space(self) -> dict[str, Any]:
        """Per stage a depth key, then kernel and expand keys for all four blocks (the keys of
        blocks beyond the depth are drawn too, as OFA does, and do not change the network)."""
        from ray import tune

        allowed = {"depth": DEPTHS, "kernel": KERNELS, "expand": EXPANDS}
        return {key: tune.choice(list(allowed[key.rsplit("_", 1)[1]])) for key in CONFIG_KEYS}

    # ------------------------------------------------------------------ tables
    def arch_from_record(self, record: Mapping[str, Any]) -> Arch:
        """Rows with OFA's ``ks``, ``e``, ``d`` list columns (its accuracy data sets), else the default."""
        if all(c in record for c in RECORD_COLUMNS):
            return self.make(tuple(tuple(int(v) for v in record[c]) for c in RECORD_COLUMNS))  # type: ignore[arg-type]
        return super().arch_from_record(record)

    def record_columns(self) -> list[str]:
        return [*RECORD_COLUMNS, *super().record_columns()]

    # ------------------------------------------------------------------ search moves
    def sample(self, rng: RngLike = None) -> Arch:
        """OFA's ``sample_active_subnet``: every depth, kernel and expand ratio uniform and
        independent (unused blocks included, so ``decode(encode(a))`` repeats ``a`` exactly)."""
        rng = as_rng(rng)

        def draw(options: tuple[int, ...], n: int) -> tuple[int, ...]:
            return tuple(options[i] for i in rng.integers(len(options), size=n))

        return self.make((draw(KERNELS, NUM_BLOCKS), draw(EXPANDS, NUM_BLOCKS), draw(DEPTHS, NUM_STAGES)))

    def neighbors(self, arch: Arch) -> list[Arch]:
        """One stage's depth, or one active block's kernel or expand ratio, changed.

        Deepening a stage activates blocks with the kernel / expand ratio ``arch`` carries
        for them; edits of inactive blocks are left out (they give ``arch`` again)."""
        ks, es, ds = self._own(arch).spec
        specs: list[Spec] = []
        for s, depth in enumerate(ds):
            specs += [(ks, es, _replace(ds, s, d)) for d in DEPTHS if d != depth]
        for b, on in enumerate(active(arch.spec)):
            if on:
                specs += [(_replace(ks, b, k), es, ds) for k in KERNELS if k != ks[b]]
                specs += [(ks, _replace(es, b, e), ds) for e in EXPANDS if e != es[b]]
        return self._moves(arch, specs)

    # ------------------------------------------------------------------ networks
    def build(
        self,
        arch: Arch,
        num_classes: int = 10,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        width: float = 1.0,
        stem_stride: int = 2,
        dropout: float = 0.1,
        **build: Any,
    ) -> nn.Module:
        """The OFA sub-network of ``arch`` (defaults: OFA's width 1.0, stride-2 stem, dropout 0.1).

        Any image size works (``same``-padded stride-2 layers keep a 1x1 map 1x1), so
        ``stem_stride=1`` is only a choice to keep more resolution on small images."""
        self._check_build("MobileNetV3", build, ("width", "stem_stride", "dropout"), num_classes, in_shape)
        if not isinstance(width, numbers.Real) or width <= 0:
            raise ValueError(f"width: {width!r} is not allowed; it must be a positive number (OFA uses 1.0, 1.2)")
        check_choice("stem_stride", stem_stride, (1, 2))
        if not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: {dropout!r} is not allowed; it must be in [0, 1)")
        from search_spaces.mobilenetv3_net import OFAMobileNetV3

        return OFAMobileNetV3(
            stage_blocks(self._own(arch).spec), num_classes=int(num_classes), in_channels=in_shape[0],
            width=float(width), stem_stride=int(stem_stride), dropout=dropout,
        )

    def cell_graph(self, arch: Arch) -> nx.DiGraph:
        """The searched blocks as a chain ``input -> mbconv_k{k}_e{e} ... -> output``; block
        vertices also carry ``stage``, ``block`` (1-based), ``stride``, ``se`` and ``act``."""
        graph = nx.DiGraph()
        graph.add_node(0, op="input")
        for s, blocks in enumerate(stage_blocks(self._own(arch).spec)):
            for b, (kernel, expand) in enumerate(blocks):
                v = graph.number_of_nodes()
                graph.add_node(
                    v, op=f"mbconv_k{kernel}_e{expand}", stage=s + 1, block=b + 1,
                    stride=STAGE_STRIDES[s] if b == 0 else 1, se=STAGE_SE[s], act=STAGE_ACTS[s],
                )
                graph.add_edge(v - 1, v)
        out = graph.number_of_nodes()
        graph.add_node(out, op="output")
        graph.add_edge(out - 1, out)
        return graph


def _check_int(field: str, value: Any, allowed: Sequence[int]) -> None:
    check_choice(field, value, allowed)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{field}: {value!r} is not allowed; allowed values are {list(allowed)} (int)")


def _replace(values: tuple[int, ...], i: int, value: int) -> tuple[int, ...]:
    return values[:i] + (value,) + values[i + 1 :]
