"""extract_candidate: every rule, and never an exception on junk."""

from __future__ import annotations

import random

import pytest

from kernelwright.propose.parse import MAX_REPLY_CHARS, ParsedReply, extract_candidate

NEW = "import torch\n\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
OLD = "import torch\n\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"


def fence(code: str, tag: str = "python") -> str:
    return f"```{tag}\n{code}```\n"


def failure(reply: str, finish_reason: str = "stop") -> str:
    parsed = extract_candidate(reply, finish_reason)
    assert parsed.source is None and parsed.failure is not None
    return parsed.failure


@pytest.mark.parametrize("tag", ["python", "py", "Python3", ""])
def test_fenced_block(tag: str) -> None:
    parsed = extract_candidate(f"Here is the kernel:\n\n{fence(NEW, tag)}\nIt fuses the ops.")
    assert (parsed.source, parsed.failure, parsed.note) == (NEW, None, "")


def test_tilde_and_indented_fences() -> None:
    assert extract_candidate("~~~python\n" + NEW + "~~~").source == NEW
    indented = (
        "1. The code:\n\n    ```python\n" + "".join("    " + line + "\n" for line in NEW.splitlines()) + "    ```\n"
    )
    assert extract_candidate(indented).source == NEW


@pytest.mark.parametrize(
    "prose",
    [
        "I would fuse the two kernels and use shared memory.",
        "class of kernels: elementwise.\nfrom experience, import costs dominate.",
    ],
)
def test_prose_only(prose: str) -> None:
    assert failure(prose) == "the reply holds no code block."


def test_empty_reply() -> None:
    assert failure("") == "the reply is empty."
    assert failure("  \n") == "the reply is empty."


def test_only_other_languages() -> None:
    assert failure(fence("__global__ void k() {}", "cuda")) == "the reply holds no Python code block (only cuda)."


def test_cuda_block_beside_python_block_takes_python() -> None:
    python = 'cuda_src = """<the kernel above>"""\n' + NEW
    parsed = extract_candidate(fence("__global__ void k() {}\n", "cpp") + fence(python))
    assert parsed.source == python


def test_last_of_several_modelnew_blocks_wins() -> None:
    second = NEW.replace("return x", "return x + 0")
    parsed = extract_candidate(fence(OLD) + "Now:\n" + fence(NEW) + "Better:\n" + fence(second))
    assert parsed.source == second and "last of 2 blocks" in parsed.note


def test_modelnew_block_preferred_over_usage_example() -> None:
    usage = "model = ModelNew()\nprint(model(torch.ones(2)))\n"
    assert extract_candidate(fence(NEW) + "Use it like this:\n" + fence(usage)).source == NEW


def test_modelnew_as_an_alias_counts() -> None:
    code = "import torch\n\nclass Fused(torch.nn.Module):\n    pass\n\nModelNew = Fused\n"
    assert extract_candidate(fence(code)).source == code


def test_model_renamed_when_unambiguous() -> None:
    code = (
        "import torch.nn as nn\n\nclass Model(nn.Module):\n"
        "    def __init__(self):\n        super(Model, self).__init__()\n"
        "        self.tag = 'Model'  # Model\n        self.other = nn.Model\n"
    )
    parsed = extract_candidate(fence(code))
    assert parsed.note == "renamed class Model to ModelNew"
    assert parsed.source == code.replace("class Model(", "class ModelNew(").replace("super(Model", "super(ModelNew")
    assert "'Model'" in parsed.source and "nn.Model" in parsed.source  # strings and attributes kept


def test_two_blocks_defining_model_is_ambiguous() -> None:
    assert (
        failure(fence(OLD) + fence(OLD)) == "the reply defines no class ModelNew (several blocks define class Model)."
    )


def test_model_defined_twice_in_one_block_is_ambiguous() -> None:
    assert failure(fence(OLD + "\n" + OLD)) == "the reply defines no class ModelNew."


def test_no_model_class_at_all() -> None:
    assert failure(fence("import torch\n\ndef helper(x):\n    return x\n")) == "the reply defines no class ModelNew."


def test_bare_module_accepted() -> None:
    assert extract_candidate(NEW).source == NEW


def test_bare_module_after_prose_intro() -> None:
    assert extract_candidate("Sure! Here it is:\n" + NEW).source == NEW


def test_bare_module_cut_at_token_limit_is_truncated() -> None:
    assert failure(NEW, "length") == "the code is truncated: the reply stops before its code ends."


@pytest.mark.parametrize("reason", ["length", "max_tokens"])
def test_cut_inside_the_block(reason: str) -> None:
    reply = "```python\nimport torch\n\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return torch.cat((x,"
    assert failure(reply, reason) == "the code is truncated: line 5: '(' was never closed."


def test_unclosed_fence_is_truncated_even_when_it_parses() -> None:
    assert failure("```python\n" + NEW) == "the code is truncated: the reply stops before its code ends."


def test_syntax_error_names_the_line() -> None:
    broken = NEW.replace("return x", "return x +")
    assert failure(fence(broken)) == "the code does not parse: line 5: invalid syntax."


def test_cut_after_a_closed_block_keeps_the_code() -> None:
    parsed = extract_candidate(fence(NEW) + "This kernel is faster beca", "length")
    assert parsed.source == NEW and parsed.note == "the reply was cut off after its code block"


def test_thinking_section_is_dropped() -> None:
    draft = fence(NEW.replace("return x", "return -x"))
    assert extract_candidate(f"<think>first try:\n{draft}</think>\n{fence(NEW)}").source == NEW
    assert failure(f"<think>first try:\n{draft}", "length") == "the reply is empty (it was cut off while thinking)."


def test_too_long_reply() -> None:
    assert failure("x" * (MAX_REPLY_CHARS + 1)).startswith("the reply is too long")


def test_deep_nesting_is_a_failure_not_a_crash() -> None:
    assert failure(fence("x = " + "(" * 200_000 + ")" * 200_000 + "\n")).startswith("the code does not parse")


def test_null_byte_is_a_failure_not_a_crash() -> None:
    assert failure(fence("class ModelNew:\x00 pass\n")).startswith("the code does not parse")


def test_never_raises_on_junk() -> None:
    rng = random.Random(1234)
    junk: list[object] = ["```", "```python", "```\n```", "~~~~", "\x00" * 10, "class ModelNew", "<think>"]
    junk += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000))) for _ in range(20)]
    junk += ["".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(2000)) for _ in range(20)]
    junk += ["```python\n" + "".join(rng.choice("()[]{}:=\n\t ab`'\"") for _ in range(3000)) for _ in range(20)]
    for reply in junk:
        for reason in ("stop", "length", "", None):
            parsed = extract_candidate(reply, reason)  # type: ignore[arg-type]
            assert isinstance(parsed, ParsedReply)
            if parsed.failure is not None:  # one sentence
                assert parsed.failure.endswith(".") and "\n" not in parsed.failure


def test_parsed_reply_holds_exactly_one() -> None:
    with pytest.raises(ValueError):
        ParsedReply(source="x", failure="y")
    with pytest.raises(ValueError):
        ParsedReply(source=None)
