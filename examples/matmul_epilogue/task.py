"""Linear layer with a fused epilogue: relu(x @ W^T + b) * scale.

M = 257, K = 513, N = 769: each one past a multiple of 256/512, so every tile
dimension has a ragged edge.
"""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.scale = scale

    def forward(self, x):
        return torch.relu(self.linear(x)) * self.scale


batch_size = 257
in_features = 513
out_features = 769
scale = 0.5


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, scale]
