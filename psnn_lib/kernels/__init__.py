"""Compiled kernels: C sources built at first use with the machine's C compiler (:mod:`.build`),
each with a torch twin that gives the same results bit for bit where no compiler is found or
``PSNN_KERNELS=off``. Two, both the PS neuron's: its fast path (:mod:`.ps_fast`) and its
time-stepped simulator (:mod:`.ps_steps`)."""
