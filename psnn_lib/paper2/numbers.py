"""The numbers paper 2 publishes (Wang, Zhu and Li 2025, negative spikes), as printed.

Accuracies in percent; "time steps" is the T the paper reports for a method.
"""
from __future__ import annotations

# Table 1, Fashion-MNIST, Net4: method -> (ANN, SNN, time steps)
TABLE1 = {"AugMapping": (92.11, 92.11, 220), "stReLU": (90.83, 90.83, 79), "proposed": (92.72, 92.62, 10)}

# Tables 2 (VGG-16) and 3 (ResNet-18), CIFAR-10: (method, T) -> (ANN, SNN, Delta acc)
TABLE2 = {("two-stage", 4): (95.62, 91.76, 3.86), ("proposed", 4): (96.26, 93.69, 2.57),
          ("two-stage", 8): (95.62, 93.38, 2.24), ("proposed", 8): (96.26, 95.17, 1.09)}
TABLE3 = {("two-stage", 4): (96.81, 91.23, 5.58), ("proposed", 4): (97.12, 94.17, 2.95),
          ("two-stage", 8): (96.81, 93.93, 2.88), ("proposed", 8): (97.12, 95.09, 2.03)}

# Table 4, Net4: firing rate of layers 1-3 with and without threshold optimisation
TABLE4 = {"with": (0.0964, 0.0763, 0.1856), "without": (0.0368, 0.0161, 0.0477)}

# Table 5, Net4: weighting -> (ANN, SNN, time steps)
TABLE5 = {"average": (92.72, 92.61, 19), "cosine": (92.72, 92.62, 10), "sigmoid": (92.72, 92.6, 13)}

# Fig. 3 (text, Sect. 5.3): without calibration the SNN passes 92 % and then needs
# "about 20 extra time steps" to reach 92.6 %
FIG3_EXTRA_STEPS = 20
FIG3_LEVELS = (92.0, 92.6)
