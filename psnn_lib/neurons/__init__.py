"""Spiking neurons as torch modules: PS, FS, rate-coded IF, and their spike counters.

No neuron knows the converter; the methods of ``psnn_lib.converter`` (its registry) bind them to it.
"""
