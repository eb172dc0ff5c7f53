"""Row reduction: x.sum(dim=1) of a (1023, 4097) matrix; the output has shape (1023,).

Both sizes are one off a power of two, so neither rows nor columns fill whole blocks.
"""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x.sum(dim=1)


batch_size = 1023
dim = 4097


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
