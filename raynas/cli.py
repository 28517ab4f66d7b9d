"""The ``raynas`` command line.  Each sub-command lives in one small function; ``main``
only parses arguments and dispatches."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Sequence

import numpy as np

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _configure_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space name (see `raynas spaces`)")
    parser.add_argument("--arch", help="architecture string; default: a random sample")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random sample")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--in-shape", default="3,32,32", help="C,H,W of one input image")


def _run_inspect(args: argparse.Namespace) -> int:
    """Build one architecture's real network, run it once, and print what it is."""
    import torch

    from search_spaces import get_space

    space = get_space(args.space)
    arch = space.parse(args.arch) if args.arch else space.sample(np.random.default_rng(args.seed))
    in_shape = tuple(int(v) for v in args.in_shape.split(","))
    if len(in_shape) != 3:
        raise ValueError(f"--in-shape must be C,H,W (three integers), got {args.in_shape!r}")
    model = space.build(arch, num_classes=args.num_classes, in_shape=in_shape).eval()
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(torch.randn(8, *in_shape))
    elapsed_ms = (time.perf_counter() - start) * 1e3
    print(f"space      {space.name}")
    print(f"arch       {arch}")
    print(f"canonical  {space.canonical(arch)}  (key {arch.key})")
    print(f"params     {sum(p.numel() for p in model.parameters()):,}")
    print(f"forward    8 x {in_shape} -> {tuple(logits.shape)} in {elapsed_ms:.1f} ms")
    return 0




def _configure_spaces(parser: argparse.ArgumentParser) -> None:
    """No options."""


def _run_spaces(args: argparse.Namespace) -> int:
    from search_spaces import available_spaces, get_space

    for name in available_spaces():
        print(f"{name:10s} {len(get_space(name).tune_space()):3d} Tune keys")
    return 0


#: name -> (help, add arguments, run); new sub-commands are one entry here
COMMANDS: dict[str, tuple[str, Configure, Run]] = {
    "inspect": ("build one architecture's network and print its size", _configure_inspect, _run_inspect),
    "spaces": ("list the registered search spaces", _configure_spaces, _run_spaces),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raynas", description="Neural Architecture Search on Ray Tune.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = COMMANDS[args.command][2]
    try:
        return run(args)
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"raynas {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
