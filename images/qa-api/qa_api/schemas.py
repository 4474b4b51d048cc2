"""Request schema of /v1/chat/completions (OpenAI; unknown fields are ignored)."""

from typing import Any, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, List[Any], None] = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: List[ChatMessage] = Field(min_length=1)
    model: Optional[str] = None
    stream: bool = False
    temperature: Optional[float] = Field(default=None, ge=0, le=2)
    top_p: Optional[float] = Field(default=None, gt=0, le=1)
    max_tokens: Optional[int] = Field(default=None, ge=1)
    max_completion_tokens: Optional[int] = Field(default=None, ge=1)
    # extension: number of retrieved chunks (default QA_TOP_K)
    top_k: Optional[int] = Field(default=None, ge=1, le=50)
