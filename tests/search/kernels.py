"""Replies a scripted or fake LLM gives in search tests, for the diag_matmul fixture task."""

from __future__ import annotations

_HEAD = "import torch\nimport torch.nn as nn\n\n\nclass ModelNew(nn.Module):\n    def __init__(self):\n        super().__init__()\n\n"

# One dot product per row: honest and much faster than the reference's full matmul.
FAST = _HEAD + "    def forward(self, a, b):\n        return (a * b.t()).sum(1)\n"

# Honest and correct, but the matmul twice: slower than eager.
SLOW = _HEAD + ("    def forward(self, a, b):\n"
                "        c = a @ b\n"
                "        return torch.diagonal(c + 0.0 * (a @ b))\n")

# Honest and a little faster than eager at best: the same matmul, a copy of the diagonal.
TIE = _HEAD + "    def forward(self, a, b):\n        return torch.diagonal(torch.mm(a, b)).clone()\n"

# Wrong: one percent off.
WRONG = _HEAD + "    def forward(self, a, b):\n        return (a * b.t()).sum(1) * 1.01\n"

# A cheat that looks fastest of all: the answer cached by input address, so timed
# calls on staged inputs return instantly.
CHEAT = _HEAD.replace("super().__init__()\n", "super().__init__()\n        self.cache = {}\n") + (
    "    def forward(self, a, b):\n"
    "        key = (a.data_ptr(), b.data_ptr())\n"
    "        if key not in self.cache:\n"
    "            self.cache[key] = (a * b.t()).sum(1)\n"
    "        return self.cache[key]\n")

# Raises on every call.
CRASH = _HEAD + "    def forward(self, a, b):\n        raise RuntimeError('kernel launch failed')\n"


def reply(code: str, words: str = "Here is the kernel.") -> str:
    """An LLM-style reply: a sentence and one python block."""
    return f"{words}\n\n```python\n{code}```\n"


PROSE = "I would fuse the matmul and the diagonal, but I will not write code today."
TRUNCATED = "```python\nimport torch\nclass ModelNew(torch.nn.Module):\n    def forward(self, a, b):\n        return (a *"
