"""LayerNorm over the last dimension with an elementwise affine (weight and bias).

The weight and bias are drawn at random in __init__ (under the judge's weight
seed) so a kernel that ignores the affine cannot pass; the judge copies them
into the candidate by state_dict key (ln.weight, ln.bias).
"""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        with torch.no_grad():
            self.ln.weight.normal_(1.0, 0.5)
            self.ln.bias.normal_(0.0, 0.5)

    def forward(self, x):
        return self.ln(x)


batch_size = 2048
dim = 1000


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [dim]
