#!/usr/bin/env python3
"""Load and slow-client figures for `provmark serve` (issue #11 §5). Python 3 stdlib only.

Starts the server itself (so that it can read its RSS and send it SIGTERM), then measures:
  1. 32 concurrent chat requests over --max-concurrent 8: counts of 200 and 429;
  2. RSS (VmRSS of the server's pid) over a 224-request soak;
  3. 42 malformed requests, each against the 4xx it must get;
  4. streamed and whole answers whose clients disconnect: time until /health shows every slot free;
  5. trickled-header, half-body and silent connections: when the server closed them, and /health meanwhile;
     connections over --max-connections: 503 at once, and room again after the header timeout;
  6. SIGTERM while slow clients hold unfinished requests, on a second server whose read timeouts
     (60 s) cannot end them: seconds until the process exits.

Usage: python3 bench/scripts/serve_load.py [--bin target/release/provmark] [--timeout 2] [--grace 3]
           [--slow N] [-- extra serve arguments, e.g. --profile P --key K]
Default serve arguments: --no-watermark --threads 1. Prints one JSON object per phase and a summary.
"""
import argparse, asyncio, json, os, re, signal, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default="target/release/provmark")
ap.add_argument("--timeout", type=float, default=2.0, help="header, body and idle timeouts (s)")
ap.add_argument("--grace", type=float, default=3.0, help="--shutdown-timeout (s)")
ap.add_argument("--max-connections", type=int, default=64)
ap.add_argument("--slow", type=int, default=20, help="connections of each slow kind")
ap.add_argument("extra", nargs="*")
a = ap.parse_args()
extra = a.extra or ["--no-watermark", "--threads", "1"]

HOST, PORT, proc = "127.0.0.1", None, None


def start(timeout):
    """Starts a server whose header, body and idle timeouts are `timeout` seconds."""
    global PORT, proc
    cmd = [a.bin, "serve", *extra, "--listen", "127.0.0.1:0", "--max-concurrent", "8",
           "--max-tokens-limit", "256", "--header-timeout", str(timeout), "--body-timeout", str(timeout),
           "--idle-timeout", str(timeout), "--shutdown-timeout", str(a.grace),
           "--max-connections", str(a.max_connections)]
    print("server:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://[\d.]+:(\d+)", line)
    if not m:
        sys.exit(f"server did not start: {line!r}")
    PORT = int(m.group(1))


results = {}


def rss_kib():
    with open(f"/proc/{proc.pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS")).split()[1])


def report(name, obj):
    results[name] = obj
    print(json.dumps({name: obj}), flush=True)


async def raw(data: bytes, timeout=120.0):
    """Sends raw bytes on a fresh connection; returns (status, body text) after the server closes."""
    r, w = await asyncio.open_connection(HOST, PORT)
    try:
        w.write(data)
        await w.drain()
        out = await asyncio.wait_for(r.read(), timeout)
    finally:
        w.close()
    text = out.decode("utf-8", "replace")
    status = int(text[9:12]) if text.startswith("HTTP/1.1 ") else None
    return status, text.split("\r\n\r\n", 1)[-1]


def request(method, path, body=b"", headers=()):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    head = [f"{method} {path} HTTP/1.1", "host: x", "connection: close", *headers]
    if body or method == "POST":
        head += ["content-type: application/json", f"content-length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chat(max_tokens, stream=False, content="Tell me a story about a lighthouse."):
    return request("POST", "/v1/chat/completions",
                   {"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
                    "stream": stream})


async def health():
    status, body = await raw(request("GET", "/health"), timeout=10)
    return status, (json.loads(body) if status == 200 else body)


async def concurrency():
    t = time.monotonic()
    got = await asyncio.gather(*(raw(chat(48)) for _ in range(32)))
    counts = {}
    for s, _ in got:
        counts[str(s)] = counts.get(str(s), 0) + 1
    report("concurrency_32_over_8", {"statuses": counts, "wall_s": round(time.monotonic() - t, 1)})


async def soak():
    before, samples, statuses, t = rss_kib(), [], {}, time.monotonic()
    for _ in range(28):  # 28 rounds x 8 = 224 requests
        got = await asyncio.gather(*(raw(chat(16, stream=(i % 2 == 1))) for i in range(8)))
        for s, _ in got:
            statuses[str(s)] = statuses.get(str(s), 0) + 1
        samples.append(rss_kib())
    report("soak_224", {"statuses": statuses, "rss_kib_before": before, "rss_kib_after_32": samples[3],
                        "rss_kib_after": samples[-1], "rss_kib_max": max(samples),
                        "wall_s": round(time.monotonic() - t, 1)})


MALFORMED = []


def bad(name, data, want):
    MALFORMED.append((name, data, want))


for ep in ["/v1/chat/completions", "/v1/completions"]:
    e = ep.split("/")[-1]
    bad(f"{e}: not JSON", request("POST", ep, "{not json"), 400)
    bad(f"{e}: JSON array", request("POST", ep, "[1, 2]"), 400)
    bad(f"{e}: JSON string", request("POST", ep, '"hello"'), 400)
    bad(f"{e}: empty body", request("POST", ep, ""), 400)
    bad(f"{e}: unknown model", request("POST", ep, {"model": "gpt-9", "prompt": "x",
                                                    "messages": [{"role": "user", "content": "x"}]}), 404)
    bad(f"{e}: max_tokens 0", request("POST", ep, {"prompt": "x", "max_tokens": 0,
                                                   "messages": [{"role": "user", "content": "x"}]}), 400)
    bad(f"{e}: max_tokens over the limit", request("POST", ep, {"prompt": "x", "max_tokens": 100000,
                                                                "messages": [{"role": "user", "content": "x"}]}), 400)
    bad(f"{e}: max_tokens a string", request("POST", ep, {"prompt": "x", "max_tokens": "ten",
                                                          "messages": [{"role": "user", "content": "x"}]}), 400)
    bad(f"{e}: temperature 3", request("POST", ep, {"prompt": "x", "temperature": 3,
                                                    "messages": [{"role": "user", "content": "x"}]}), 400)
    bad(f"{e}: temperature a string", request("POST", ep, {"prompt": "x", "temperature": "hot",
                                                           "messages": [{"role": "user", "content": "x"}]}), 400)
    bad(f"{e}: top_p 1.5", request("POST", ep, {"prompt": "x", "top_p": 1.5,
                                                "messages": [{"role": "user", "content": "x"}]}), 400)
    bad(f"{e}: stream a string", request("POST", ep, {"prompt": "x", "stream": "yes",
                                                      "messages": [{"role": "user", "content": "x"}]}), 400)
    bad(f"{e}: body over the limit, declared", request("POST", ep, headers=["content-length: 2000000"])
        .replace(b"content-length: 0\r\n", b""), 413)
    bad(f"{e}: body over the limit, chunked",
        f"POST {ep} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n".encode()
        + b"".join(b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n" for _ in range(17)) + b"0\r\n\r\n", 413)
    bad(f"{e}: GET on a POST route", request("GET", ep), 405)
chat_ep, comp_ep = "/v1/chat/completions", "/v1/completions"
bad("chat: no messages", request("POST", chat_ep, {"max_tokens": 4}), 400)
bad("chat: messages empty", request("POST", chat_ep, {"messages": []}), 400)
bad("chat: messages an object", request("POST", chat_ep, {"messages": {"role": "user"}}), 400)
bad("chat: message without role", request("POST", chat_ep, {"messages": [{"content": "x"}]}), 400)
bad("chat: message a string", request("POST", chat_ep, {"messages": ["hi"]}), 400)
bad("chat: content a number", request("POST", chat_ep, {"messages": [{"role": "user", "content": 5}]}), 400)
bad("chat: image content part", request("POST", chat_ep, {"messages": [{"role": "user", "content": [
    {"type": "image_url", "image_url": {"url": "http://x"}}]}]}), 400)
bad("completions: no prompt", request("POST", comp_ep, {"max_tokens": 4}), 400)
bad("completions: prompt a number", request("POST", comp_ep, {"prompt": 5}), 400)
bad("unknown endpoint", request("POST", "/v1/embeddings", {"input": "x"}), 404)
bad("bad request line", b"GARBAGE\r\n\r\n", 400)
bad("invalid content-length", b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n", 400)
assert len(MALFORMED) == 42, len(MALFORMED)


async def malformed():
    wrong = []
    for name, data, want in MALFORMED:
        try:
            status, body = await raw(data, timeout=20)
        except (ConnectionError, asyncio.TimeoutError) as e:
            status, body = type(e).__name__, ""
        if status != want:
            wrong.append({"case": name, "want": want, "got": status, "body": body[:120]})
    report("malformed_42", {"cases": len(MALFORMED), "right": len(MALFORMED) - len(wrong), "wrong": wrong})


async def disconnects():
    out = {}
    for stream in (True, False):
        conns = []
        for _ in range(8):
            r, w = await asyncio.open_connection(HOST, PORT)
            w.write(chat(256, stream=stream, content="Write a very long essay about the history of ships."))
            await w.drain()
            conns.append((r, w))
        if stream:
            for r, _ in conns:
                await r.readuntil(b"data: ")  # the answer has started
        else:
            await asyncio.sleep(1.0)
        busy = (await health())[1]["available_slots"]
        t = time.monotonic()
        for _, w in conns:
            w.transport.abort()
        free_s = None
        while time.monotonic() - t < 10:
            _, h = await health()
            if h["available_slots"] == 8:
                free_s = round(time.monotonic() - t, 2)
                break
            await asyncio.sleep(0.05)
        out["streamed" if stream else "whole"] = {"slots_free_while_held": busy, "all_free_after_s": free_s}
    report("disconnects_free_slots", out)


async def slow_clients():
    kinds = {"trickle_headers": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n",
             "half_body": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 1000\r\n\r\n{\"mess",
             "silent": b""}
    t0 = time.monotonic()

    async def hold(kind):
        r, w = await asyncio.open_connection(HOST, PORT)
        if kinds[kind]:
            w.write(kinds[kind])
        got = b""
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(r.read(4096), 0.5)
                except asyncio.TimeoutError:
                    if kind == "trickle_headers":
                        w.write(b"X-a: b\r\n")
                    if time.monotonic() - t0 > 60:
                        return kind, None, got
                    continue
                if not chunk:
                    break
                got += chunk
        except ConnectionError:
            pass
        w.close()
        return kind, round(time.monotonic() - t0, 2), got

    tasks = [asyncio.create_task(hold(k)) for k in kinds for _ in range(a.slow)]
    await asyncio.sleep(0.5)
    during = await health()
    done = await asyncio.gather(*tasks)
    out = {}
    for k in kinds:
        closes = [c for kk, c, _ in done if kk == k]
        answers = sorted({g[:12].decode("latin1") for kk, _, g in done if kk == k})
        out[k] = {"opened": len(closes), "closed_by_server": sum(c is not None for c in closes),
                  "first_close_s": min(c for c in closes if c is not None),
                  "last_close_s": max(c for c in closes if c is not None), "answers": answers}
    out["health_meanwhile"] = during[0]
    report("slow_clients", out)

    # The connection cap: hold more silent connections than it allows.
    n = a.max_connections + 16
    socks, t = [], time.monotonic()
    for _ in range(n):
        socks.append(await asyncio.open_connection(HOST, PORT))

    async def first(r):
        try:
            return (await asyncio.wait_for(r.read(100), 0.5)).startswith(b"HTTP/1.1 503")
        except asyncio.TimeoutError:
            return False

    refused = sum(await asyncio.gather(*(first(r) for r, _ in socks)))
    t_refused = round(time.monotonic() - t, 2)
    probe_at_once = (await raw(request("GET", "/health"), timeout=10))[0]
    t_room = None
    while time.monotonic() - t < 30:
        status, _ = await raw(request("GET", "/health"), timeout=10)
        if status == 200:
            t_room = round(time.monotonic() - t, 2)
            break
        await asyncio.sleep(0.1)
    for _, w in socks:
        w.close()
    report("connection_cap", {"cap": a.max_connections, "silent_opened": n, "answered_503": refused,
                              "all_503_within_s": t_refused, "probe_while_full": probe_at_once,
                              "health_200_again_after_s": t_room})


async def sigterm():
    r1, w1 = await asyncio.open_connection(HOST, PORT)
    w1.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000\r\n\r\n{\"mess")
    r2, w2 = await asyncio.open_connection(HOST, PORT)
    w2.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    await asyncio.sleep(1)
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    exited = None
    while time.monotonic() - t < 60:
        if proc.poll() is not None:
            exited = round(time.monotonic() - t, 2)
            break
        await asyncio.sleep(0.05)
    w1.close()
    w2.close()
    report("sigterm_with_slow_clients", {"read_timeouts_s": 60, "shutdown_timeout_s": a.grace,
                                         "exited_after_s": exited, "exit_code": proc.returncode})


async def main():
    start(a.timeout)
    await concurrency()
    await soak()
    await malformed()
    await disconnects()
    await slow_clients()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    # A second server whose read timeouts (60 s) cannot end the slow clients: only the deadline can.
    start(60)
    await sigterm()


try:
    asyncio.run(main())
finally:
    if proc is not None and proc.poll() is None:
        proc.kill()
print(json.dumps({"summary": results}, indent=1))
