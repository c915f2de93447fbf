"""Calibration through time (paper 2, Sect. 4.2): training a converted signed-spike SNN.

Not conversion: it takes a :class:`~psnn_lib.converter.engine.ConvertedModel` of a
signed-spike method and trains its weights through its T time steps against the ANN,
layer by layer or jointly (:mod:`.calibrate`), with the adaptive layer weights of
Eqs. 29-31 and the kappa schedule (:mod:`.layer_weights`), or shifts its initial
membranes first (the two-stage baseline's first stage, :mod:`.membranes`).
"""
