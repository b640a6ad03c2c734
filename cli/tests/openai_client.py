"""The official openai Python client against `provmark serve` (BASE_URL,
ending in /v1): chat and completions, n, stop, logprobs, streaming equal to
the whole answer, the provmark extension, and errors as the client's typed
exceptions. Prints "all checks passed" or fails with an assertion."""

import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="unused", max_retries=0)
model = client.models.list().data[0].id
msgs = [{"role": "user", "content": "Write two sentences about the sea."}]

# A whole answer with logprobs. (n > 1 is refused under synthid, whose answer
# is a function of the prompt: more choices would be copies.)
r = client.chat.completions.create(
    model=model, messages=msgs, max_tokens=30, seed=3, logprobs=True, top_logprobs=2
)
assert len(r.choices) == 1
for c in r.choices:
    assert c.message.role == "assistant" and c.message.content
    lps = c.logprobs.content
    assert lps and all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in lps)
extra = r.model_extra["provmark"]
assert extra["watermark"] is True and extra["marked_tokens"] > 0, extra
assert r.usage.completion_tokens == extra["completion_tokens"]

# Streaming gives exactly the whole answer (same seed), stop sequences too.
for stop in (None, [" the"]):
    whole = client.chat.completions.create(
        model=model, messages=msgs, max_tokens=40, seed=5, stop=stop
    ).choices[0].message.content
    parts = []
    for chunk in client.chat.completions.create(
        model=model, messages=msgs, max_tokens=40, seed=5, stop=stop, stream=True,
        stream_options={"include_usage": True},
    ):
        for c in chunk.choices:
            if c.delta.content:
                parts.append(c.delta.content)
    assert "".join(parts) == whole, (stop, parts, whole)
    if stop:
        assert " the" not in whole

# Temperature 0 is served at the watermark's floor, and says so.
r = client.chat.completions.create(model=model, messages=msgs, max_tokens=10, temperature=0)
assert r.model_extra["provmark"]["raised"] == ["temperature"], r.model_extra

# Completions, with the legacy logprobs shape.
r = client.completions.create(model=model, prompt="Once upon a time", max_tokens=8, logprobs=2, seed=1)
lp = r.choices[0].logprobs
assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset) == r.usage.completion_tokens

# Errors arrive as the client's typed exceptions, with param set.
for kwargs, param in (
    ({"n": 99}, "n"),
    ({"n": 2}, "n"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"top_logprobs": 30, "logprobs": True}, "top_logprobs"),
):
    try:
        client.chat.completions.create(model=model, messages=msgs, max_tokens=5, **kwargs)
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.body["param"] == param, (kwargs, e.body)
    else:
        raise AssertionError(f"{kwargs} was accepted")
try:
    client.chat.completions.create(model="gpt-9", messages=msgs)
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found"
else:
    raise AssertionError("an unknown model was accepted")
print("all checks passed")
