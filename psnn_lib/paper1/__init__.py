"""Paper 1 (Precise Spiking neurons): its published numbers and the studies that reproduce them."""
