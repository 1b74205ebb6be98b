"""TCP forwarder for loadtest/soak.sh's rolling restart.

    python3 forwarder.py PORT TARGET_FILE STATS_FILE

Listens on 127.0.0.1:PORT. Each new client connection goes to the backend named in TARGET_FILE
(one line, HOST:PORT) at accept time, so a rolling restart moves new connections while old ones
drain where they are. On SIGTERM it stops and writes STATS_FILE (JSON: connections per backend,
and how many connections the backend refused). Standard library only.
"""
import asyncio, json, signal, sys

port, target_file, stats_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
stats = {"connections": {}, "backend_refused": 0}


def target():
    with open(target_file) as f:
        host, p = f.read().strip().rsplit(":", 1)
    return host, int(p)


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def handle(client_r, client_w):
    host, p = target()
    try:
        backend_r, backend_w = await asyncio.open_connection(host, p)
    except OSError:
        stats["backend_refused"] += 1
        client_w.close()
        return
    name = f"{host}:{p}"
    stats["connections"][name] = stats["connections"].get(name, 0) + 1
    await asyncio.gather(pipe(client_r, backend_w), pipe(backend_r, client_w))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    with open(stats_file, "w") as f:
        json.dump(stats, f)


asyncio.run(main())
