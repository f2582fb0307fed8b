"""One module per screen; each has ``build(lab)`` that lays out its tab and wires its events."""
