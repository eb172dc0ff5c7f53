"""Softmax over the last dimension.

dim = 4099 is prime: no block size divides a row. The judge also feeds shifted
and scaled inputs, so a kernel must subtract the row maximum to stay finite.
"""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.softmax(x, dim=-1)


batch_size = 512
dim = 4099


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
