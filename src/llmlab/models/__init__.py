"""Model runtimes behind one ``Backend`` seam, the ``Model`` handle and model resolution."""
