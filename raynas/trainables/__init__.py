"""Tune trainables: stand-alone training and benchmark look-up (more in later modules)."""
from raynas.trainables.benchmark import BenchmarkTrainable, load_benchmark
from raynas.trainables.settings import TrainerSettings, decode_trial
from raynas.trainables.standalone import StandaloneTrainable, accuracy

__all__ = ["BenchmarkTrainable", "StandaloneTrainable", "TrainerSettings", "accuracy", "decode_trial", "load_benchmark"]
