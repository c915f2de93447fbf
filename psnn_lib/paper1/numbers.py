"""The numbers paper 1 publishes (Wang et al., Precise spiking neurons), as printed.

Keys use the paper's own labels for networks and this library's dataset
keys (``psnn_lib.models.datasets.DATASETS``) for datasets.
"""
from __future__ import annotations

# Fig. 2 caption: Sigmoid(2.5) spikes at t = 1, 2, 3, 5.
FIG2_SPIKE_TIMES = [1, 2, 3, 5]

# Table 1 ("This work" rows): (ANN acc, SNN acc, loss, K)
TABLE1 = {
    ("cifar10", "VGG16"): (94.15, 94.14, -0.01, 16),
    ("cifar10", "ResNet20"): (92.59, 92.54, -0.05, 16),
    ("cifar100", "VGG16"): (74.00, 73.96, -0.04, 16),
    ("cifar100", "ResNet20"): (68.81, 68.74, -0.07, 16),
}

# Table 2 ("This work" rows, ImageNet): (ANN top-1, SNN top-1, loss, K)
TABLE2 = {"VGG16": (71.52, 71.23, -0.29, 17), "ResNet-34": (73.29, 73.29, 0.00, 13),
          "EfficientNet-B7": (84.04, 83.64, -0.40, 13)}

# Table 4: (Neurons (M), Spikes (M), K, FireRate)
TABLE4 = {
    ("cifar10", "VGG16"): (0.28, 0.56, 16, 0.18), ("cifar10", "ResNet18"): (0.05, 0.11, 16, 0.21),
    ("cifar10", "ResNet20"): (0.19, 0.40, 16, 0.19), ("cifar10", "ResNet56"): (0.53, 2.17, 16, 0.32),
    ("cifar100", "VGG16"): (0.28, 0.52, 16, 0.18), ("cifar100", "ResNet18"): (0.05, 0.11, 16, 0.21),
    ("cifar100", "ResNet20"): (0.19, 0.51, 16, 0.23),
    ("imagenet", "VGG16"): (13.56, 24.66, 16, 0.18), ("imagenet", "ResNet34"): (3.56, 10.80, 16, 0.25),
    ("imagenet", "EfficientNetb0"): (6.16, 24.32, 16, 0.31),
    ("imagenet", "EfficientNetb7"): (35.80, 145.38, 16, 0.32),
}

# Table 5: MSE at iterations 1..9 (display name -> values); TABLE5_ACTIVATIONS maps
# the display names to the activation table's names.
TABLE5 = {
    "GELU": [17.5108, 4.9552, 0.9677, 0.2075, 0.0607, 0.0237, 0.0088, 0.0016, 0.0006],
    "Hardsigmoid": [0.4500, 0.1242, 0.0325, 0.0083, 0.0016, 0.0004, 0.0001, 0.0000, 0.0000],
    "Hardswish": [18.5334, 1.9127, 0.7720, 0.3638, 0.1020, 0.0409, 0.0091, 0.0023, 0.0006],
    "Mish": [18.2491, 1.8019, 0.6792, 0.2307, 0.1044, 0.0269, 0.0080, 0.0016, 0.0004],
    "SELU": [29.2541, 3.5440, 0.8707, 0.2514, 0.0621, 0.0164, 0.0040, 0.0011, 0.0003],
    "SiLU": [17.9242, 5.2522, 0.8884, 0.2352, 0.1030, 0.0232, 0.0065, 0.0018, 0.0004],
    "Sigmoid": [0.4499, 0.0318, 0.0072, 0.0016, 0.0004, 0.0001, 0.0000, 0.0000, 0.0000],
}
TABLE5_ACTIVATIONS = {
    "GELU": "gelu", "Hardsigmoid": "hardsigmoid", "Hardswish": "hardswish", "Mish": "mish",
    "SELU": "selu", "SiLU": "silu", "Sigmoid": "sigmoid",
}

# Table 3 (SST-2, SST-5, CoLA): per dataset key (psnn_lib.models.sentences.PAPER_TASKS),
# per method: (network, ANN acc, SNN acc, loss, K). "FS" is ref. [17], "SpikeZIP-TF" ref. [12]
# (its ANN is another, ReLU-based, model); CoLA's numbers are accuracies, not GLUE's Matthews correlation.
TABLE3 = {
    "sst2": {"FS": ("RoBERTa-base", 92.37, 87.81, -4.56, 16), "SpikeZIP-TF": ("RoBERTa-base", 94.15, 92.81, -1.34, 64),
             "PS": ("RoBERTa-base", 92.37, 92.37, 0.00, 15)},
    "sst5": {"FS": ("RoBERTa-large", 55.86, 43.51, -12.35, 16),
             "SpikeZIP-TF": ("RoBERTa-large", 57.42, 56.51, -0.91, 128),
             "PS": ("RoBERTa-large", 55.86, 55.77, -0.09, 17)},
    "cola": {"PS": ("BERT-base", 81.21, 81.59, 0.38, 15)},
}
