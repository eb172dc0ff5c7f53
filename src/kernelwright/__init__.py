"""kernelwright: faster PyTorch kernels, and proof that they are correct and faster."""

__version__ = "0.1.0"
