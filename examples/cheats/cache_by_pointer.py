"""A cheat, shipped to show a rejection: answers repeated inputs from a cache.

It computes the elementwise task correctly the first time it sees an input
tensor and, when called again on the same storage, returns the stored answer
without doing any work. A judge that times repeated calls on one input and
checks only the first call would report it as nearly free.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

_cache = {}


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        key = (x.data_ptr(), tuple(x.shape))
        if key not in _cache:
            _cache[key] = F.gelu(torch.relu(x * 2 + 1)) * torch.sigmoid(x)
        return _cache[key]
