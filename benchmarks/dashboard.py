"""Dashboard benchmark: windows/s one instance ingests from a real Mosquitto, and API latency for
an 8-hour shift of a 50-truck fleet.

    .venv/bin/python benchmarks/dashboard.py [--windows 20000] [--instances 2] [--trucks 50]
        [--shift-h 8] [--compare-decode]

Ingest: the dashboard's session subscribes, disconnects, N windows are published (QoS 1) into its
queue, then a fresh ingest drains the backlog: the figure is store-and-acknowledge speed, not the
publisher's. API: real HTTP (uvicorn in a thread) against a store holding the whole shift.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.dashboard.app import create_app
from edge_agent.dashboard.ingest import DashboardIngest
from edge_agent.dashboard.private_broker import start_private_broker
from edge_agent.dashboard.store import DashboardStore
from edge_agent.heatmap import window as window_module
from edge_agent.heatmap.codec import decode_window, encode_window
from edge_agent.heatmap.window import Window

SITE = "plant-b"
T0 = 1_795_000_020.0
WINDOW_S = 60.0
NX, NY, CELL_M = 50, 45, 2.0  # the spec's 100 m x 90 m example plant at 2 m cells
CELLS_PER_WINDOW = (8, 25)  # a truck crosses 8-25 cells of 2 m in a minute (measured replays)


def make_windows(n_trucks: int, n_per_truck: int, seed: int = 0) -> list[Window]:
    """Realistic windows: each minute a truck visits a short chain of neighbouring cells."""
    rng = random.Random(seed)
    out = []
    for a in range(n_trucks):
        agent = f"fl-{a + 1:02d}"
        ix, iy = rng.randrange(NX), rng.randrange(NY)
        for k in range(n_per_truck):
            cells: dict[tuple[int, int], tuple[float, float]] = {}
            n = rng.randint(*CELLS_PER_WINDOW)
            per = 54.0 / n
            for _ in range(n):
                ix = min(NX - 1, max(0, ix + rng.choice((-1, 0, 1))))
                iy = min(NY - 1, max(0, iy + rng.choice((-1, 0, 1))))
                d, m = cells.get((ix, iy), (0.0, 0.0))
                mv = per if rng.random() < 0.6 else 0.0
                cells[(ix, iy)] = (round(d + per, 3), round(m + mv, 3))
            dwell = round(sum(c[0] for c in cells.values()), 3)
            moving = round(sum(c[1] for c in cells.values()), 3)
            idle = round(dwell - moving, 3)
            zone = "hall" if iy < 30 else "yard"
            start = T0 + k * WINDOW_S
            out.append(Window(
                id=f"{SITE}/{agent}/{int(start)}/60", site=SITE, agent=agent, start=start,
                end=start + WINDOW_S, cell_m=CELL_M, x0=0.0, y0=0.0, nx=NX, ny=NY, cells=cells,
                dwell_s=dwell, moving_s=moving, idle_s=idle, no_position_s=6.0,
                distance_m=round(moving * 1.8, 3), zones={zone: (dwell, moving, idle)}))
    return out


def bench_decode(n_windows: int = 2000, repeats: int = 5) -> dict[str, float]:
    """CPU per decode_window (inflate, JSON, validation) with the one-pass cell check, and with
    every cell checked field by field (the path that names a bad cell; all cells took it before
    the one-pass check): best of `repeats`, process CPU time, in this one run."""
    payloads = [encode_window(w) for w in make_windows(50, max(1, n_windows // 50), seed=1)]

    def best_us() -> float:
        best = math.inf
        for _ in range(repeats):
            t = time.process_time()
            for p in payloads:
                decode_window(p)
            best = min(best, time.process_time() - t)
        return best / len(payloads) * 1e6

    fast_us = best_us()
    with careful_decode():
        careful_us = best_us()
    return {"fast_us": fast_us, "careful_us": careful_us}


@contextlib.contextmanager
def careful_decode() -> Iterator[None]:
    """decode_window with every cell checked field by field (the one-pass check switched off)."""
    plain_cells = window_module._plain_cells
    window_module._plain_cells = lambda raw, nx, ny: None
    try:
        yield
    finally:
        window_module._plain_cells = plain_cells


def stored_now(store: DashboardStore) -> int:
    return store.count_windows()


def _thread_cpu_probe(ing: DashboardIngest) -> dict[str, float]:
    """Per-thread CPU of an ingest: paho's network thread (MQTT parsing, PUBACKs) and the writer
    (decode_window, SQLite), read with time.thread_time() inside each thread."""
    out = {"net_cpu_s": 0.0, "writer_cpu_s": 0.0}
    first: list[float] = []
    on_message, handle_batch = ing._on_message, ing.handle_batch

    def probe_message(client: Any, userdata: Any, msg: Any) -> None:
        now = time.thread_time()
        if not first:
            first.append(now)
        out["net_cpu_s"] = now - first[0]
        on_message(client, userdata, msg)

    def probe_batch(batch: Any) -> None:
        t = time.thread_time()
        handle_batch(batch)
        out["writer_cpu_s"] += time.thread_time() - t

    ing.client.on_message = probe_message
    ing.handle_batch = probe_batch  # type: ignore[method-assign]
    return out


def _drain(db: str, url: str, client_id: str, stop: Any) -> None:
    """One dashboard instance in its own process (for the scale-out figure)."""
    ing = DashboardIngest(DashboardStore(db), url, client_id=client_id)
    ing.start()
    stop.wait(600)
    ing.stop()


def bench_ingest(work: Path, n_windows: int, instances: int = 1,
                 store_process: bool = False, label: str = "") -> dict[str, float]:
    """Backlog drain rate of `instances` dashboards in one share group (1: in this process)."""
    windows = make_windows(50, max(1, n_windows // 50), seed=1)
    payloads = [(f"plants/{w.site}/agents/{w.agent}/heatmap", encode_window(w)) for w in windows]
    tag = f"{instances}-{int(store_process)}{label}"
    broker = start_private_broker(work / f"broker-{tag}",
                                  extra_conf="max_queued_messages 0\nmax_queued_bytes 0")
    db = work / f"ingest-{tag}.db"
    store = DashboardStore(db)
    ids = [f"bench-dashboard-{i}" for i in range(instances)]
    try:
        for cid in ids:  # create the sessions and their shared subscriptions, then leave
            first = DashboardIngest(store, broker.url, client_id=cid)
            first.start()
            assert first.wait_connected(30), "dashboard did not connect"
            time.sleep(0.3)  # let the SUBACK land before leaving
            first.stop()
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.max_inflight_messages_set(1000)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        t_pub = time.perf_counter()
        infos = [pub.publish(t, p, qos=1) for t, p in payloads]
        for info in infos:
            info.wait_for_publish(120)
        pub_s = time.perf_counter() - t_pub
        pub.disconnect()
        pub.loop_stop()
        if instances == 1:
            second = DashboardIngest(store, broker.url, client_id=ids[0],
                                     store_process=store_process)
            threads = _thread_cpu_probe(second)
            kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0, cpu0 = time.perf_counter(), time.process_time()
            second.start()
            deadline = t0 + 300
            while second.stats.stored < len(payloads) and time.perf_counter() < deadline:
                time.sleep(0.005)
            ingest_s = time.perf_counter() - t0
            cpu_s = time.process_time() - cpu0  # all threads of this process: load-independent
            second.stop()  # joins the store process, so its CPU shows in RUSAGE_CHILDREN
            kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            child_s = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
            parent_s = cpu_s
            cpu_s += child_s
            net_us = threads["net_cpu_s"] / max(1, stored_now(store)) * 1e6
            writer_us = threads["writer_cpu_s"] / max(1, stored_now(store)) * 1e6
        else:
            ctx = multiprocessing.get_context("spawn")
            stop = ctx.Event()
            procs = [ctx.Process(target=_drain, args=(str(db), broker.url, cid, stop))
                     for cid in ids]
            t0 = time.perf_counter()
            for pr in procs:
                pr.start()
            deadline = t0 + 300
            while store.count_windows() < len(payloads) and time.perf_counter() < deadline:
                time.sleep(0.01)
            ingest_s = time.perf_counter() - t0  # includes starting the processes
            cpu_s = net_us = writer_us = parent_s = child_s = math.nan
            stop.set()
            for pr in procs:
                pr.join(60)
        stored = store.count_windows()
    finally:
        broker.stop()
    return {"windows": len(payloads), "stored": stored, "ingest_s": ingest_s,
            "ingest_per_s": stored / ingest_s, "per_cpu_s": stored / cpu_s,
            "net_thread_us": net_us, "writer_thread_us": writer_us,
            "parent_us": parent_s / stored * 1e6, "child_us": child_s / stored * 1e6,
            "publish_per_s": len(payloads) / pub_s,
            "payload_bytes_mean": statistics.mean(len(p) for _, p in payloads)}


def bench_api(work: Path, trucks: int, shift_h: float) -> dict[str, float]:
    per_truck = int(shift_h * 3600 / WINDOW_S)
    windows = make_windows(trucks, per_truck, seed=2)
    store = DashboardStore(work / "api.db")
    t = time.perf_counter()
    for i in range(0, len(windows), 2000):
        store.add_windows(windows[i:i + 2000])
    store_s = time.perf_counter() - t
    app = create_app(store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}/api"
    shift = f"site={SITE}&from={T0}&to={T0 + shift_h * 3600}"
    hour = f"site={SITE}&from={T0 + (shift_h - 1) * 3600}&to={T0 + shift_h * 3600}"

    def get_ms(path: str) -> tuple[float, dict[str, object]]:
        t0 = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=300) as r:
            body = json.load(r)
        return (time.perf_counter() - t0) * 1000, body

    res: dict[str, float] = {"windows": len(windows), "store_per_s": len(windows) / store_s}
    res["utilisation_shift_ms"] = statistics.median(get_ms("/utilisation?" + shift)[0]
                                                    for _ in range(5))
    res["utilisation_hour_ms"] = statistics.median(get_ms("/utilisation?" + hour)[0]
                                                   for _ in range(5))
    cold, body = get_ms("/heatmap?" + shift)
    assert body["windows"] == len(windows)
    res["heatmap_shift_cold_ms"] = cold
    res["heatmap_shift_cached_ms"] = statistics.median(get_ms("/heatmap?" + shift)[0]
                                                       for _ in range(5))
    res["heatmap_hour_cold_ms"] = get_ms("/heatmap?" + hour)[0]
    # A live update: one more window in the current hour; only that hour is merged again.
    late = make_windows(1, per_truck, seed=3)[-1]
    store.add_windows([Window(**{**late.__dict__, "id": late.id + "-live", "agent": "fl-99"})])
    res["heatmap_shift_after_new_window_ms"] = get_ms("/heatmap?" + shift)[0]
    server.should_exit = True
    thread.join(30)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--windows", type=int, default=20_000, help="windows for the ingest test")
    ap.add_argument("--trucks", type=int, default=50, help="fleet size for the API test")
    ap.add_argument("--shift-h", type=float, default=8.0, help="shift length in hours")
    ap.add_argument("--instances", type=int, default=2,
                    help="also measure this many instances sharing the load (1: skip)")
    ap.add_argument("--compare-decode", action="store_true",
                    help="also measure ingest with every cell checked field by field")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        work = Path(tmp)
        dec = bench_decode()
        print(f"decode_window: {dec['fast_us']:.1f} us per window with the one-pass cell check, "
              f"{dec['careful_us']:.1f} us checking every cell field by field "
              f"({dec['careful_us'] / dec['fast_us']:.2f}x faster)")
        ing = bench_ingest(work, args.windows)
        print(f"ingest: {ing['stored']:.0f}/{ing['windows']:.0f} windows stored in "
              f"{ing['ingest_s']:.2f} s = {ing['ingest_per_s']:.0f} windows/s "
              f"(target >= 5000; publisher alone {ing['publish_per_s']:.0f}/s; "
              f"payload {ing['payload_bytes_mean']:.0f} B)")
        print(f"ingest per CPU-second of the dashboard process (all its threads; what one "
              f"free core gives): {ing['per_cpu_s']:.0f} windows/s; CPU per window: network "
              f"thread {ing['net_thread_us']:.0f} us, writer thread "
              f"{ing['writer_thread_us']:.0f} us")
        if args.compare_decode:
            with careful_decode():
                slow = bench_ingest(work, args.windows, label="careful")
            print(f"ingest with every cell checked field by field: {slow['per_cpu_s']:.0f} "
                  f"windows per CPU-second, writer thread {slow['writer_thread_us']:.0f} us: "
                  f"the one-pass check gives {ing['per_cpu_s'] / slow['per_cpu_s']:.2f}x per "
                  f"CPU-second, writer {slow['writer_thread_us'] / ing['writer_thread_us']:.2f}x "
                  "less CPU")
        two = bench_ingest(work, args.windows, 1, store_process=True)
        print(f"ingest, one instance with --store-process (MQTT and SQLite on two cores): "
              f"{two['ingest_per_s']:.0f} windows/s wall clock "
              f"({two['ingest_per_s'] / ing['ingest_per_s']:.2f}x in-process; "
              f"{two['per_cpu_s']:.0f} windows per CPU-second of both processes; CPU per "
              f"window: MQTT process {two['parent_us']:.0f} us, store process "
              f"{two['child_us']:.0f} us, so about "
              f"{1e6 / max(two['parent_us'], two['child_us']):.0f} windows/s where two cores "
              "are free)")
        if args.instances > 1:
            many = bench_ingest(work, args.windows, args.instances)
            print(f"ingest, {args.instances} instances in one share group and one --db "
                  f"(processes): {many['stored']:.0f} windows in {many['ingest_s']:.2f} s = "
                  f"{many['ingest_per_s']:.0f} windows/s, "
                  f"{many['ingest_per_s'] / ing['ingest_per_s']:.2f}x one instance")
        api = bench_api(work, args.trucks, args.shift_h)
        print(f"api: {api['windows']:.0f} windows ({args.trucks} trucks x {args.shift_h:g} h), "
              f"store {api['store_per_s']:.0f} windows/s")
        print(f"  /api/utilisation shift {api['utilisation_shift_ms']:.1f} ms, last hour "
              f"{api['utilisation_hour_ms']:.1f} ms (median of 5)")
        print(f"  /api/heatmap shift cold {api['heatmap_shift_cold_ms']:.0f} ms, cached "
              f"{api['heatmap_shift_cached_ms']:.1f} ms; last hour cold "
              f"{api['heatmap_hour_cold_ms']:.0f} ms")
        print(f"  /api/heatmap shift after one new window (live update) "
              f"{api['heatmap_shift_after_new_window_ms']:.0f} ms")
        print(f"  ratio heatmap cold / utilisation (shift): "
              f"{api['heatmap_shift_cold_ms'] / api['utilisation_shift_ms']:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
