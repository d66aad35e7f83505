"""The editor's widgets: the canvas, the read-only panes and the dock's panels."""
