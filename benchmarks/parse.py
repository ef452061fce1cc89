"""Wi-Fi parsing speed: our whole radiotap path next to scapy's raw record iteration.

Builds (or takes with --capture) a radiotap pcap and prints frames/s for
  1. scapy RawPcapReader: iterating the raw records only (the yardstick),
  2. edge_agent open_pcap: iterating the raw records only,
  3. edge_agent WifiSource.replay: the whole Wi-Fi path (pcap -> radiotap -> 802.11 -> WifiObs),
  4. the same with a site (the surveyed-BSSID filter on),
  5. scapy full dissection (PcapReader + reading the beacon fields) on a subset,
with each time as a ratio to (1). Target: (3) within 2x of (1). Times are the best of --repeat
runs, interleaved, because the machine is shared and the figures are noisy.

    .venv/bin/python benchmarks/parse.py [--frames 200000] [--beacons template|real]
                                         [--capture FILE] [--repeat 5]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from edge_agent.capture.writers import LINKTYPE_IEEE802_11_RADIOTAP, BeaconTemplate, PcapWriter
from edge_agent.site import Site, site_from_dict
from edge_agent.sources.pcap import open_pcap
from edge_agent.sources.wifi import WifiSource

N_APS = 12  # a plant hall: a dozen APs heard at once
BEACON_INTERVAL_S = 0.1024  # 100 TU


def build_capture(path: Path, n_frames: int) -> list[str]:
    """n_frames beacons from N_APS APs on channels 1/6/11, interleaved in time; returns BSSIDs."""
    aps = [BeaconTemplate(f"02:9e:34:71:25:{i:02x}", f"plant-ops-{i}", (1, 6, 11)[i % 3],
                          fcs=i % 2 == 0) for i in range(N_APS)]
    t0 = 1_795_000_000.0
    with PcapWriter(path, LINKTYPE_IEEE802_11_RADIOTAP) as w:
        for i in range(n_frames):
            ap = aps[i % N_APS]
            w.write(t0 + (i // N_APS) * BEACON_INTERVAL_S + (i % N_APS) * 1e-3,
                    ap.frame(-45 - (i * 7) % 40))
    return [ap.bssid for ap in aps]


REAL_BEACON = (Path(__file__).resolve().parents[1] / "tests" / "data" / "real-captures" / "wifi"
               / "chrissanders-packets_3e80211_wpaauth.pcapng")


def build_real_capture(path: Path, n_frames: int) -> list[str]:
    """n_frames copies of a real 336-byte beacon (RSN, HT, WMM, WPS elements) from N_APS BSSIDs,
    with what changes between real beacons changed: TSF, sequence number, signal, the TIM
    element's DTIM count (period 2) and, in every 8th beacon, its traffic bitmap."""
    frame = next(d for _t, _lt, d in open_pcap(REAL_BEACON))  # radiotap (20 bytes) + beacon
    rt_len = frame[2] | frame[3] << 8
    tim = frame.index(bytes([5, 4]), rt_len + 36)  # TIM element: id 5, length 4
    bssids = [f"02:9e:34:71:26:{i:02x}" for i in range(N_APS)]
    t0 = 1_795_000_000.0
    with PcapWriter(path, LINKTYPE_IEEE802_11_RADIOTAP) as w:
        for i in range(n_frames):
            f = bytearray(frame)
            ap = i % N_APS
            beacon_no = i // N_APS
            mac = bytes.fromhex(bssids[ap].replace(":", ""))
            f[rt_len + 10:rt_len + 22] = mac + mac
            f[rt_len + 22:rt_len + 24] = ((beacon_no << 4) & 0xFFF0).to_bytes(2, "little")
            f[rt_len + 24:rt_len + 32] = (beacon_no * 102400).to_bytes(8, "little")
            f[14] = (-45 - (i * 7) % 40) & 0xFF  # dBm_AntSignal in this radiotap layout
            f[tim + 2] = beacon_no % 2  # DTIM count
            f[tim + 5] = 0x02 if beacon_no % 8 == 0 else 0x00  # a station has traffic buffered
            w.write(t0 + beacon_no * BEACON_INTERVAL_S + ap * 1e-3, bytes(f))
    return bssids


def site_for(bssids: list[str]) -> Site:
    return site_from_dict({
        "site": "bench", "origin": {"lat": 48.0, "lon": 11.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 100},
        "wifi_aps": [{"bssid": b, "ssid": "", "channel": 1, "x": 1, "y": 1, "z": 3,
                      "rssi_1m_dbm": -40, "path_loss_exponent": 2.5} for b in bssids],
    })


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200_000,
                    help="beacons in the built capture (ignored with --capture)")
    ap.add_argument("--capture", type=Path, help="time this pcap/pcapng instead of building one")
    ap.add_argument("--beacons", choices=["template", "real"], default="template",
                    help="built capture: BeaconTemplate frames (the simulator's) or copies of a "
                         "real beacon with its TIM changing (default: template)")
    ap.add_argument("--dissect-frames", type=int, default=5000,
                    help="frames for scapy's full dissection (it is slow)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each; the best counts")
    args = ap.parse_args()

    from scapy.layers.dot11 import Dot11Beacon, Dot11Elt, Dot11ProbeResp, RadioTap
    from scapy.utils import PcapReader, RawPcapReader

    with tempfile.TemporaryDirectory() as tmp:
        if args.capture:
            path = args.capture
            bssids = sorted({o.bssid for o in WifiSource.replay(path, None)})
        else:
            path = Path(tmp) / "beacons.pcap"
            build = build_capture if args.beacons == "template" else build_real_capture
            bssids = build(path, args.frames)
        n = sum(1 for _ in open_pcap(path))
        site = site_for(bssids[: max(1, len(bssids) // 2)])

        def raw_scapy() -> None:
            for _ in RawPcapReader(str(path)):
                pass

        def raw_ours() -> None:
            with open_pcap(path) as r:
                for _ in r:
                    pass

        def full_ours() -> None:
            collections.deque(WifiSource.replay(path, None), maxlen=0)

        def full_ours_site() -> None:
            collections.deque(WifiSource.replay(path, site), maxlen=0)

        n_dissect = min(n, args.dissect_frames)

        def dissect_scapy() -> None:
            with PcapReader(str(path)) as r:
                for i, pkt in enumerate(r):
                    if i >= n_dissect:
                        break
                    if pkt.haslayer(Dot11Beacon) or pkt.haslayer(Dot11ProbeResp):
                        elt = pkt.getlayer(Dot11Elt)
                        _ = (pkt[RadioTap].dBm_AntSignal, pkt.addr2, elt.info if elt else b"")

        runs: list[tuple[str, Callable[[], None], int]] = [
            ("scapy RawPcapReader, raw records only", raw_scapy, n),
            ("edge_agent open_pcap, raw records only", raw_ours, n),
            ("edge_agent Wi-Fi path, survey mode", full_ours, n),
            ("edge_agent Wi-Fi path, with a site", full_ours_site, n),
            ("scapy full dissection", dissect_scapy, n_dissect),
        ]
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, fn, _count in runs:
                t = time.perf_counter()
                fn()
                dt = time.perf_counter() - t
                best[name] = min(best.get(name, float("inf")), dt)
        src = WifiSource.replay(path, None)
        n_obs = sum(1 for _ in src)

    per_frame_raw = best[runs[0][0]] / n
    what = args.capture or f"built from {args.beacons} beacons"
    print(f"capture: {what}, {n} frames, {n_obs} observations, "
          f"best of {args.repeat}")
    print(f"{'':40s} {'frames/s':>12s} {'us/frame':>9s} {'time vs raw scapy':>18s}")
    for name, _fn, count in runs:
        per_frame = best[name] / count
        print(f"{name:40s} {count / best[name]:12,.0f} {per_frame * 1e6:9.2f} "
              f"{per_frame / per_frame_raw:17.2f}x")
    ratio = best[runs[2][0]] / best[runs[0][0]]
    print(f"whole Wi-Fi path / scapy raw iteration = {ratio:.2f}x (target <= 2x): "
          f"{'met' if ratio <= 2.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
