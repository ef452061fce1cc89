"""BLE advertising packets as LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR (256) records, CRC-24 included.

The PHDR carries the RF channel and the signal power (flag "signal power valid" set); the link-layer
packet is access address, ADV_NONCONN_IND PDU and its CRC, which does not depend on the signal,
so a template per beacon is built once and patched per frame (see BleAdvTemplate).
"""

from __future__ import annotations

import struct
import uuid as uuid_mod

import numpy as np
import numpy.typing as npt

ADV_ACCESS_ADDRESS = 0x8E89BED6  # fixed access address of every advertising-channel packet
ADV_CRC_INIT = 0x555555  # CRC preset on advertising channels (Core spec Vol 6 Part B 3.1.1)
_CRC_POLY_REFLECTED = 0x5A6000  # x^24+x^10+x^9+x^6+x^4+x^3+x+1, bit-reversed for LSB-first
PDU_ADV_IND, PDU_ADV_NONCONN_IND = 0x0, 0x2
ADV_CHANNELS = (37, 38, 39)
# PHDR flags: dewhitened | signal power valid | reference AA valid | CRC checked | CRC valid
_PHDR_FLAGS = 0x0001 | 0x0002 | 0x0010 | 0x0400 | 0x0800
_APPLE_COMPANY_ID = 0x004C
_EDDYSTONE_SERVICE = 0xFEAA
_FLAGS_AD = bytes([0x02, 0x01, 0x06])  # LE general discoverable, BR/EDR not supported


def rf_channel(adv_channel: int) -> int:
    """RF channel index (0-39, frequency 2402 + 2*i MHz) of a BLE channel number (0-39)."""
    if adv_channel == 37:
        return 0
    if adv_channel == 38:
        return 12
    if adv_channel == 39:
        return 39
    return adv_channel + 1 if adv_channel <= 10 else adv_channel + 2


def _reverse24(v: int) -> int:
    out = 0
    for i in range(24):
        if v & (1 << i):
            out |= 1 << (23 - i)
    return out


def ble_crc24(pdu: bytes, init: int = ADV_CRC_INIT) -> bytes:
    """The 3 CRC bytes of a link-layer PDU as transmitted (LSB-first LFSR, Core spec 3.1.1)."""
    state = _reverse24(init)
    for byte in pdu:
        for _ in range(8):
            bit = (state ^ byte) & 1
            byte >>= 1
            state >>= 1
            if bit:
                state |= 1 << 23
                state ^= _CRC_POLY_REFLECTED
    return struct.pack("<I", state)[:3]


def ibeacon_data(uuid: str, major: int, minor: int, tx_power_dbm: int) -> bytes:
    """AdvData of an Apple iBeacon: flags, then manufacturer data 4C 00 02 15 uuid major minor."""
    payload = (struct.pack("<HBB", _APPLE_COMPANY_ID, 0x02, 0x15) + uuid_mod.UUID(uuid).bytes
               + struct.pack(">HHb", major, minor, tx_power_dbm))
    return _FLAGS_AD + bytes([len(payload) + 1, 0xFF]) + payload


def eddystone_uid_data(namespace_hex: str, instance_hex: str, tx_power_0m_dbm: int) -> bytes:
    """AdvData of an Eddystone-UID frame (10-byte namespace, 6-byte instance)."""
    ns, inst = bytes.fromhex(namespace_hex), bytes.fromhex(instance_hex)
    if len(ns) != 10 or len(inst) != 6:
        raise ValueError("Eddystone-UID needs a 10-byte namespace and a 6-byte instance")
    svc = struct.pack("<H", _EDDYSTONE_SERVICE)
    frame = svc + bytes([0x00]) + struct.pack("b", tx_power_0m_dbm) + ns + inst + b"\0\0"
    return (_FLAGS_AD + bytes([0x03, 0x03]) + svc + bytes([len(frame) + 1, 0x16]) + frame)


class BleAdvTemplate:
    """One advertiser's packet; `.frame(rssi_dbm, channel)` patches the PHDR signal and channel."""

    CHANNEL_OFFSET = 0
    SIGNAL_OFFSET = 1

    def __init__(self, address: str, adv_data: bytes, *, pdu_type: int = PDU_ADV_NONCONN_IND,
                 random_address: bool | None = None) -> None:
        addr = bytes(int(p, 16) for p in address.split(":"))
        if len(addr) != 6:
            raise ValueError(f"bad BLE address {address!r}")
        if random_address is None:  # random static addresses have the two top bits set
            random_address = (addr[0] & 0xC0) == 0xC0
        payload = addr[::-1] + adv_data
        if len(payload) > 37:
            raise ValueError("legacy advertising payload is at most 37 bytes")
        pdu = bytes([pdu_type | (0x40 if random_address else 0), len(payload)]) + payload
        ll = struct.pack("<I", ADV_ACCESS_ADDRESS) + pdu + ble_crc24(pdu)
        phdr = struct.pack("<BbbBIH", rf_channel(37), -60, -128, 0, ADV_ACCESS_ADDRESS,
                           _PHDR_FLAGS)
        self._template = bytearray(phdr + ll)

    def frame(self, rssi_dbm: int, channel: int = 37) -> bytes:
        self._template[self.SIGNAL_OFFSET] = max(-128, min(127, int(rssi_dbm))) & 0xFF
        self._template[self.CHANNEL_OFFSET] = rf_channel(channel)
        return bytes(self._template)

    def frames(self, rssi_dbm: npt.NDArray[np.integer],
               channel: npt.NDArray[np.integer]) -> npt.NDArray[np.uint8]:
        """Many frames at once: (n, len) uint8, row i at rssi_dbm[i] on advertising channel[i]."""
        base = np.frombuffer(bytes(self._template), dtype=np.uint8)
        out = np.tile(base, (len(rssi_dbm), 1))
        out[:, self.SIGNAL_OFFSET] = np.clip(rssi_dbm, -128, 127).astype(np.int8).view(np.uint8)
        rf = np.select([channel == 37, channel == 38, channel == 39], [0, 12, 39], default=0)
        out[:, self.CHANNEL_OFFSET] = rf.astype(np.uint8)
        return out


def ble_adv_frame(address: str, rssi_dbm: int, *,
                  ibeacon: tuple[str, int, int, int] | None = None,
                  eddystone_uid: tuple[str, str, int] | None = None,
                  channel: int = 37) -> bytes:
    """One advertising record for a pcap of link type 256.

    ibeacon = (uuid, major, minor, tx_power_dbm); eddystone_uid = (namespace_hex, instance_hex,
    tx_power_0m_dbm); neither: flags only (an advertiser matched by address).
    """
    if ibeacon is not None:
        data = ibeacon_data(*ibeacon)
    elif eddystone_uid is not None:
        data = eddystone_uid_data(*eddystone_uid)
    else:
        data = _FLAGS_AD
    return BleAdvTemplate(address, data).frame(rssi_dbm, channel)
