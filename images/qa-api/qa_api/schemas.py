"""Request schema of /v1/chat/completions (OpenAI; unknown fields are ignored).

Every value the service uses is typed strictly, so a wrong type is a 400 naming the
field, never a 500 later on.
"""

from typing import List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

INT_MAX = 2 ** 31 - 1


def _encodable(text):
    """A lone surrogate (JSON "\\ud800") would break hashing, logging and the upstream call."""
    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text is not valid Unicode (lone surrogate)") from None
    return text


class ContentPart(BaseModel):
    """A part of a message's content; only text parts are used (others are ignored)."""
    model_config = ConfigDict(extra="ignore")

    type: StrictStr
    text: Optional[StrictStr] = None

    @field_validator("text")
    @classmethod
    def _text_encodable(cls, value):
        return _encodable(value)

    @model_validator(mode="after")
    def text_part_has_text(self):
        if self.type == "text" and self.text is None:
            raise ValueError("a part of type text needs a string field text")
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[StrictStr, List[ContentPart], None] = None

    @field_validator("content")
    @classmethod
    def _content_encodable(cls, value):
        return _encodable(value) if isinstance(value, str) else value

    def text(self):
        """The message's text: the string, or its text parts joined by newlines."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content or () if p.type == "text")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: List[ChatMessage] = Field(min_length=1)
    model: Optional[StrictStr] = None
    stream: bool = False
    temperature: Optional[float] = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    top_p: Optional[float] = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    max_tokens: Optional[int] = Field(default=None, ge=1, le=INT_MAX)
    max_completion_tokens: Optional[int] = Field(default=None, ge=1, le=INT_MAX)
    # extension: number of retrieved chunks (default QA_TOP_K)
    top_k: Optional[int] = Field(default=None, ge=1, le=50)
