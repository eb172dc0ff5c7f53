"""An LLM as a proposer: render the stage's prompt, ask the model, parse the reply."""

from __future__ import annotations

from kernelwright.propose import prompts
from kernelwright.propose.base import Proposal, ProposalRequest, Usage
from kernelwright.propose.llm.base import ChatError, ChatModel
from kernelwright.propose.parse import extract_candidate

MAX_REPLY_TOKENS = 16384  # a whole kernel file with room for its explanation


class LLMProposer:
    """Wraps any ChatModel (OpenAI, Anthropic, scripted) as a proposer."""

    def __init__(self, chat: ChatModel, max_tokens: int = MAX_REPLY_TOKENS,
                 temperature: float | None = None) -> None:
        self.chat = chat
        self.name = chat.name
        self.max_tokens = max_tokens
        self.temperature = temperature

    def propose(self, request: ProposalRequest) -> Proposal:
        """One candidate from one chat call; API and parse failures become recorded failures."""
        system, user = prompts.render(request)
        parent_ids = tuple(p.candidate_id for p in request.parents)
        prompt = f"[system]\n{system}\n[user]\n{user}"
        try:
            reply = self.chat.complete(system, user, max_tokens=self.max_tokens, temperature=self.temperature)
        except ChatError as exc:
            return Proposal(self.name, None, failure=f"the model call failed: {exc}", prompt=prompt,
                            parent_ids=parent_ids, usage=getattr(exc, "usage", None) or Usage())
        parsed = extract_candidate(reply.text, reply.finish_reason)
        return Proposal(self.name, parsed.source, failure=parsed.failure, prompt=prompt, reply=reply.text,
                        parent_ids=parent_ids, usage=reply.usage,
                        note=getattr(parsed, "note", "") or "")
