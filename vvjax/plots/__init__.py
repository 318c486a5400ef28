"""Figures (matplotlib only): functions take numpy arrays and return a Figure; no plt.show().

The modules never choose a matplotlib backend: scripts and notebooks keep theirs (the tests and CI
set ``MPLBACKEND=Agg``; matplotlib itself falls back to Agg where no display is available).
"""
