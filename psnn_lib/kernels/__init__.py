"""Compiled kernels: C sources built at first use with the machine's C compiler (:mod:`.build`),
each with a torch twin that gives the same results bit for bit where no compiler is found or
``PSNN_KERNELS=off``. Today one: the PS neuron's fast path (:mod:`.ps_fast`)."""
