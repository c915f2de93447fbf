"""Paper 2 (Wang, Zhu, Li, IJCAI 2025: negative spikes): its numbers, networks and studies."""
