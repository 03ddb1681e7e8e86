"""``python -m tools.studio [--host 127.0.0.1] [--port 8765] [--params params.yaml] [--out outputs/studio]``."""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m tools.studio",
                                description="A local web studio for LGTM: generate, watch, search, download.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    p.add_argument("--params", default=None, help="params file (default: $LGTM_PARAMS or params.yaml)")
    p.add_argument("--device", default=None, help="cpu | cuda | auto (default: params lgtm.device)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                   help="another selectable LGTM model folder (config.json + model.safetensors); repeatable")
    p.add_argument("--out", default=None, help="output folder of this session (default outputs/studio/<time>)")
    p.add_argument("--queue", type=int, default=4, help="requests that may wait for the device (default 4)")
    p.add_argument("--no-video", action="store_true", help="skip motion.mp4")
    p.add_argument("--verbose", action="store_true", help="log every request")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Check the models, load the default one, serve until interrupted."""
    args = build_parser().parse_args(argv)
    from motion.core.errors import DataError
    from stages.settings import load_settings
    from tools.studio.engine import Engine, ModelsMissing
    from tools.studio.server import Studio, make_server

    try:
        extra = {}
        for item in args.model:
            name, sep, folder = item.partition("=")
            if not sep or not name.strip() or not folder.strip():
                sys.exit(f"studio: --model {item!r}: expected NAME=FOLDER")
            extra[name.strip()] = folder.strip()
        engine = Engine.from_settings(load_settings(path=args.params), args.device, extra)
        if engine.config.threads:
            import torch

            torch.set_num_threads(engine.config.threads)
        engine.check()
        engine.load()  # loaded once and kept warm
    except ModelsMissing as err:
        sys.exit(f"studio: {err}")
    except (DataError, ValueError, KeyError) as err:
        sys.exit(f"studio: {err}")
    out = Path(args.out) if args.out else Path("outputs") / "studio" / time.strftime("%Y%m%d-%H%M%S")
    studio = Studio(engine, out, queue_capacity=args.queue, video=not args.no_video)
    server = make_server(studio, args.host, args.port, args.verbose)
    host, port = server.server_address[:2]
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"studio: listening on {host} - reachable from other machines", file=sys.stderr)
    print(f"LGTM studio on http://{host}:{port}/  (outputs in {out}; Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
