"""A minimal AI voice agent behind the Sticky Calls media-stream relay.

It reads the caller's context from the start frame, answers with a sentence
of audio sent at once (the relay paces it toward Twilio), saves the call
in-band and hangs up. Run it with Debian's python3-websockets:

    python3 examples/agent.py 8765
"""
import asyncio
import base64
import json
import sys

import websockets

SILENCE = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of mu-law silence


async def agent(ws):
    stream = None
    async for raw in ws:
        frame = json.loads(raw)
        if frame["event"] == "start":
            stream = frame["start"]["streamSid"]
            params = frame["start"]["customParameters"]
            ctx = json.loads(params["stickycalls_context"])
            name = (ctx.get("match") or {}).get("variables", {}).get("name")
            print("caller:", name or "new caller", ctx["identity"]["recommendation"], flush=True)
            # A whole spoken sentence at once: 2,000 frames of 20 ms.
            for _ in range(2000):
                await ws.send(json.dumps({"event": "media", "streamSid": stream, "media": {"payload": SILENCE}}))
            await ws.send(json.dumps({"event": "stickycalls.end", "end": {
                "intent": "support", "intent_status": "resolved", "variables": {"last_topic": "demo"}}}))
        elif frame["event"] == "stickycalls.ended":
            print("saved:", frame["result"]["customer_ref"], flush=True)
            await ws.send(json.dumps({"event": "stickycalls.hangup"}))
        elif frame["event"] == "stickycalls.error":
            print("not saved:", frame["error"]["message"], flush=True)


async def main(port):
    async with websockets.serve(agent, "127.0.0.1", port):
        print("listening", port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
