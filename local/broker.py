"""A real MQTT broker (amqtt) on loopback, for the local run.

    python -m local.broker --port 1883
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from amqtt.broker import Broker


def listener(port: int, **tls_files: str) -> dict:
    """A loopback listener; with `cafile`, `certfile` and `keyfile`, MQTT over TLS as AWS IoT serves it."""
    # Well above the largest fleet (local/fleet.py MAX_DEVICES) plus the rule bridge and a subscriber or two.
    return {"type": "tcp", "bind": f"127.0.0.1:{port}", "max_connections": 1000,
            **({"ssl": True, **tls_files} if tls_files else {})}


async def serve(listen: dict, stop: asyncio.Event | None = None) -> None:
    broker = Broker({
        "listeners": {"default": listen},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    await (stop or asyncio.Event()).wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(listener(args.port)))


if __name__ == "__main__":
    main()
