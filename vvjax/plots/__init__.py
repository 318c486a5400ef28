"""Figures (matplotlib only): functions take numpy arrays and return a Figure; no plt.show()."""
