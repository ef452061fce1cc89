"""802.11 beacon frames behind a radiotap header, built once per AP and patched per frame.

Radiotap fields present: Flags, Rate, Channel (frequency and flags), dBm_AntSignal, Antenna.
Only the signal byte changes from frame to frame (see BeaconTemplate.SIGNAL_OFFSET).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

from edge_agent.sources.dot11 import channel_to_freq

# Radiotap present bits
_RT_FLAGS, _RT_RATE, _RT_CHANNEL, _RT_DBM_ANTSIGNAL, _RT_ANTENNA = 1, 2, 3, 5, 11
_RT_PRESENT = sum(1 << b for b in (_RT_FLAGS, _RT_RATE, _RT_CHANNEL, _RT_DBM_ANTSIGNAL,
                                   _RT_ANTENNA))
_RT_FLAG_FCS = 0x10  # frame carries its 4-byte FCS at the end
_CHAN_2GHZ_CCK = 0x00A0  # 2 GHz spectrum | CCK: how 802.11b/g beacons at 1 Mb/s are flagged
_CHAN_5GHZ_OFDM = 0x0140  # 5 GHz spectrum | OFDM
_RATE_1MBPS = 2  # radiotap rate unit is 500 kb/s; beacons go out at the lowest basic rate
_BEACON_INTERVAL_TU = 100  # 100 TU = 102.4 ms, the near-universal default
_CAPABILITY = 0x0431  # ESS, short preamble, privacy, short slot time
_SUPPORTED_RATES = bytes([0x82, 0x84, 0x8B, 0x96, 0x0C, 0x12, 0x18, 0x24])


def mac_bytes(mac: str) -> bytes:
    return bytes(int(p, 16) for p in mac.split(":"))


class BeaconTemplate:
    """One AP's beacon as captured by a monitor interface; `.frame(rssi_dbm)` patches the signal."""

    SIGNAL_OFFSET = 14  # byte index of dBm_AntSignal in the radiotap header
    SEQ_CTRL_OFFSET = 16 + 22  # sequence control in the 802.11 header (after radiotap)
    TSF_OFFSET = 16 + 24  # the beacon body's 8-byte timestamp

    def __init__(self, bssid: str, ssid: str, channel: int, *, fcs: bool = False,
                 tsf_us: int = 0) -> None:
        self.bssid = bssid.lower()
        self.ssid = ssid
        self.channel = channel
        self.freq_mhz = channel_to_freq(channel)
        if not self.freq_mhz:
            raise ValueError(f"no 2.4/5 GHz centre frequency for channel {channel}")
        chan_flags = _CHAN_2GHZ_CCK if self.freq_mhz < 3000 else _CHAN_5GHZ_OFDM
        rt_len = 16
        radiotap = struct.pack("<BBHIBBHHbB", 0, 0, rt_len, _RT_PRESENT,
                               _RT_FLAG_FCS if fcs else 0, _RATE_1MBPS, self.freq_mhz,
                               chan_flags, -50, 0)
        assert len(radiotap) == rt_len
        mac = mac_bytes(self.bssid)
        ssid_b = ssid.encode()
        header = (struct.pack("<BBH", 0x80, 0x00, 0) + b"\xff" * 6 + mac + mac
                  + struct.pack("<H", 0))
        body = (struct.pack("<QHH", tsf_us, _BEACON_INTERVAL_TU, _CAPABILITY)
                + bytes([0, len(ssid_b)]) + ssid_b
                + bytes([1, len(_SUPPORTED_RATES)]) + _SUPPORTED_RATES
                + bytes([3, 1, channel & 0xFF]))
        mpdu = header + body
        if fcs:
            mpdu += struct.pack("<I", zlib.crc32(mpdu) & 0xFFFFFFFF)
        self._template = bytearray(radiotap + mpdu)

    def frame(self, rssi_dbm: int) -> bytes:
        """The captured bytes for one beacon heard at `rssi_dbm` (clamped to a signed byte)."""
        self._template[self.SIGNAL_OFFSET] = max(-128, min(127, int(rssi_dbm))) & 0xFF
        return bytes(self._template)

    def frames(self, rssi_dbm: npt.NDArray[np.integer],
               seq: npt.NDArray[np.integer] | None = None,
               tsf_us: npt.NDArray[np.integer] | None = None) -> npt.NDArray[np.uint8]:
        """Many frames at once: an (n, len) uint8 array, row i carrying rssi_dbm[i] and, when
        given, sequence number seq[i] (mod 4096) and TSF timestamp tsf_us[i]. Frames built with
        an FCS keep the template's FCS, so leave seq/tsf out for those."""
        base = np.frombuffer(bytes(self._template), dtype=np.uint8)
        n = len(rssi_dbm)
        out = np.tile(base, (n, 1))
        out[:, self.SIGNAL_OFFSET] = np.clip(rssi_dbm, -128, 127).astype(np.int8).view(np.uint8)
        if seq is not None:
            sc = ((np.asarray(seq, dtype=np.int64) % 4096) << 4).astype("<u2")
            out[:, self.SEQ_CTRL_OFFSET:self.SEQ_CTRL_OFFSET + 2] = sc.view(np.uint8).reshape(n, 2)
        if tsf_us is not None:
            ts = np.asarray(tsf_us, dtype=np.int64).astype("<u8")
            out[:, self.TSF_OFFSET:self.TSF_OFFSET + 8] = ts.view(np.uint8).reshape(n, 8)
        return out
