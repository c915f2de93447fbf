"""Checks before hours of work: the device a notebook runs on, and what its ``paper`` profile costs.

The ``paper`` profile trains and converts the papers' networks on their datasets: hours on
one GPU, days on a CPU. :func:`run_device` gives a notebook its device: the GPU when there is
one; at ``paper`` without a GPU it stops at once, with the estimate of :data:`ESTIMATES`,
unless the reader sets the notebook's parameter ``allow_cpu = True``.

The estimates are orders of magnitude, not measurements: the work of each notebook (epochs x
training images, images x time steps of the converted networks) divided by the throughput of
these networks in PyTorch on one H100-class GPU and on the 16 cores of such a machine's CPU
(the CPU figures scaled from this project's 2-core timings of the same code). Disk is the data
and weights the notebook downloads or caches (``psnn fetch --profile paper`` lists them). The
README's table of the paper profile shows the same hours and disk (a test holds them equal).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..models.training import default_device
from .profiles import check_profile


@dataclass(frozen=True)
class Estimate:
    """What one notebook's ``paper`` profile costs, roughly."""

    gpu_hours: float  # one H100-class GPU
    cpu_hours: float  # the 16-core CPU of such a machine, no GPU
    disk_gb: float  # data, weights and cached networks
    work: str  # what takes the time


ESTIMATES: dict[str, Estimate] = {
    "table1_cifar": Estimate(3, 60, 0.8, "4 CIFAR networks trained for 200 epochs; PS, FS and rate on 10,000 images"),
    "table2_imagenet": Estimate(1, 15, 7.7, "3 ImageNet networks (EfficientNet-B7 at 600 px) on 1,000 images, "
                                            "two folds"),
    "table3_transformers": Estimate(0.5, 8, 2.4, "BERT/RoBERTa on the GLUE validation sets, PS and FS"),
    "fig6_activations": Estimate(1, 20, 0.4, "6 ResNet-20s trained on CIFAR-10, each epoch converted and tested"),
    "p2_table1_fashion_mnist": Estimate(2, 30, 0.1, "Net4's pipeline on all Fashion-MNIST images, 3 methods "
                                                    "to T = 300 on 10,000 images"),
    "p2_fig1_table4_thresholds": Estimate(1, 15, 0.1, "Net4's ANN and threshold optimisation at the paper's scale"),
    "p2_table5_fig3_calibration": Estimate(2, 30, 0.1, "3 calibrations through time on all training images, "
                                                       "25 epochs each"),
    "p2_beyond_methods": Estimate(1, 15, 0.1, "every method on Net4 to T = 128 on 10,000 images"),
    "p2_tables2_3_deep": Estimate(6, 150, 0.7, "VGG-16 and ResNet-18 trained for 200 epochs on CIFAR-10, "
                                               "threshold optimisation, 8 calibrations"),
}


class NeedsGPU(RuntimeError):
    """The paper profile asked to run for hours on a CPU without the reader's consent."""


def run_device(notebook: str, profile: str, allow_cpu: bool = False) -> str:
    """``"cuda"`` when there is a GPU, else ``"cpu"``; at ``paper`` without a GPU, :class:`NeedsGPU`
    (naming the estimated hours) unless ``allow_cpu``."""
    check_profile(profile)
    if not isinstance(allow_cpu, bool):
        raise TypeError(f"allow_cpu must be True or False, got {allow_cpu!r}")
    device = default_device()
    if profile == "paper" and device == "cpu" and not allow_cpu:
        cost = ESTIMATES[notebook]
        raise NeedsGPU(f"{notebook} at the paper profile: {cost.work}. That is about {cost.gpu_hours:g} hours on "
                       f"one GPU and about {cost.cpu_hours:g} hours on a 16-core CPU, and no GPU is visible to "
                       "PyTorch here. Run it on a CUDA machine, or set the notebook's parameter allow_cpu = True "
                       "(psnn book --profile paper --set allow_cpu=True) to run it on this CPU anyway.")
    return device
