"""The op vocabularies and fixed macro-architectures of the built-in spaces, without torch:
shared by a space's definition (``search_spaces/<space>.py``, which the driver imports to
check a search) and its network (``<space>_net.py``, imported when one is built)."""
from __future__ import annotations

# ---------------------------------------------------------------- NAS-Bench-201
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: the cell's edges (to, from) in arch-string order
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

# ---------------------------------------------------------------- DARTS / NAS-Bench-301
DARTS_OPS: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

# ---------------------------------------------------------------- NAS-Bench-101
NB101_OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")

# ---------------------------------------------------------------- OFA MobileNetV3
STEM_WIDTH = 16
FIRST_BLOCK_WIDTH = 16
STAGE_WIDTHS: tuple[int, ...] = (24, 40, 80, 112, 160)
STAGE_STRIDES: tuple[int, ...] = (2, 2, 2, 1, 2)
STAGE_ACTS: tuple[str, ...] = ("relu", "relu", "h_swish", "h_swish", "h_swish")
STAGE_SE: tuple[bool, ...] = (False, True, False, True, True)
FINAL_EXPAND_WIDTH = 960
FEATURE_MIX_WIDTH = 1280
CHANNEL_DIVISOR = 8
SE_REDUCTION = 4
