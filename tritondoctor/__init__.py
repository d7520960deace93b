"""tritondoctor: diagnose and fix why PyTriton / Triton Inference Server will not start."""

__version__ = "0.1.0"
