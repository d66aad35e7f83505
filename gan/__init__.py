"""Headless core of CT Lesion Studio: labels, CT I/O, lung masks, the global-local cGAN, synthesis.

Nothing in this package imports Qt; numpy and torch are its only hard requirements at import time.
Heavier packages (pydicom, nibabel, OpenCV, scipy, MONAI, safetensors) are imported where they are
used, so that training on a bare GPU box needs only torch and numpy.
"""

__version__ = "0.1.0"
