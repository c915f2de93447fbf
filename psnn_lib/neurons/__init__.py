"""Spiking neurons as torch modules: PS, FS, rate-coded IF, and their spike counters.

No neuron knows the converter; ``psnn_lib.converter.methods`` binds them to it.
"""
