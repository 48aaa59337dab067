#!/usr/bin/env python3
"""Writes the committed seed inputs of the fuzz targets (fuzz/seeds/<target>/).

Seeds are small valid inputs libFuzzer starts from; they are made here by hand, byte by byte,
so that they stay a few hundred bytes and every field is known. Run from any directory:
    python3 fuzz/seeds/make_seeds.py
"""
import io
import json
import os
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as out:
        out.write(data)


def manifest(files):
    exams = [
        {"id": "fundus-od", "kind": "fundus", "eye": "OD", "file": files[0], "pixel_spacing_um": 6.5},
        {"id": "oct-os", "kind": "oct", "eye": "OS", "frames": files[1:3], "enface": files[3],
         "oct": {"lateral_um": 11.7, "axial_um": 3.9, "bscan_spacing_um": 47,
                 "enface_scan_rect": [1, 1, 6, 6]}},
        {"id": "iop", "kind": "measurement", "values": {"iop_od_mmhg": 15, "va": "20/40"}},
    ]
    return {"format": "readroom-bundle/1", "study": "FUZZ", "subject": "S0001", "visit": "V1",
            "prior_visit": "V0", "exams": exams}


def png(width, height):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\0" + bytes((x * 31 + y * 17) & 0xFF for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def element(group, elem, vr, value, big=False):
    end = ">" if big else "<"
    long_form = vr in (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
    if len(value) % 2:
        value += b"\0" if vr == b"UI" or vr in (b"OB", b"UN") else b" "
    head = struct.pack(end + "HH", group, elem) + vr
    head += (b"\0\0" + struct.pack(end + "I", len(value))) if long_form else struct.pack(end + "H", len(value))
    return head + value


def implicit(group, elem, value):
    if len(value) % 2:
        value += b" "
    return struct.pack("<HHI", group, elem, len(value)) + value


def item(elem, length):
    return struct.pack("<HHI", 0xFFFE, elem, length)


def dicom(transfer_syntax, body):
    return b"\0" * 128 + b"DICM" + element(2, 0x10, b"UI", transfer_syntax.encode()) + body


def us(value, big=False):
    return struct.pack(">H" if big else "<H", value)


def image_attributes(big=False):
    return (element(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.77.1.5.4", big)
            + element(0x0008, 0x0060, b"CS", b"OPT", big)
            + element(0x0010, 0x0010, b"PN", b"S0001", big)
            + element(0x0028, 0x0002, b"US", us(1, big), big)
            + element(0x0028, 0x0004, b"CS", b"MONOCHROME2", big)
            + element(0x0028, 0x0008, b"IS", b"2", big)
            + element(0x0028, 0x0010, b"US", us(2, big), big)
            + element(0x0028, 0x0011, b"US", us(2, big), big)
            + element(0x0028, 0x0100, b"US", us(8, big), big)
            + element(0x0028, 0x0101, b"US", us(8, big), big))


def main():
    files = ["fundus_od.png", "oct_os/000.png", "oct_os/001.png", "slo_os.png"]
    text = json.dumps(manifest(files), indent=1).encode()
    write("manifest", "example.json", text)
    write("manifest", "minimal.json", json.dumps(
        {"format": "readroom-bundle/1", "study": "FUZZ", "subject": "S1", "visit": "V1",
         "exams": [{"id": "r", "kind": "report", "eye": "OU", "file": "r.png"}]}).encode())

    for method, name in [(zipfile.ZIP_STORED, "stored.zip"), (zipfile.ZIP_DEFLATED, "deflated.zip")]:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for path, data in [("manifest.json", text)] + [(path, png(8, 8)) for path in files]:
                info = zipfile.ZipInfo(path, (2026, 1, 1, 0, 0, 0))
                info.compress_type = method
                archive.writestr(info, data)
        write("zip_source", name, buffer.getvalue())

    # The dicom_walk target prepends the preamble and magic itself.
    seq = element(0x0040, 0x0275, b"SQ", b"")[:-4] + struct.pack("<I", 0xFFFFFFFF)
    seq += item(0xE000, 0xFFFFFFFF) + element(0x0040, 0x1001, b"SH", b"RP1") + item(0xE00D, 0) + item(0xE0DD, 0)
    native = (image_attributes() + seq + element(0x0009, 0x0010, b"LO", b"ACME")
              + element(0x7FE0, 0x0010, b"OB", bytes(range(8))) + element(0x7FE1, 0x1001, b"LO", b"trailing"))
    write("dicom_walk", "explicit_le_native", dicom("1.2.840.10008.1.2.1", native)[132:])
    fragments = (element(0x7FE0, 0x0010, b"OB", b"")[:-4] + struct.pack("<I", 0xFFFFFFFF)
                 + item(0xE000, 0) + item(0xE000, 4) + b"\xff\xd8\xff\xd9" + item(0xE0DD, 0))
    write("dicom_walk", "encapsulated", dicom("1.2.840.10008.1.2.4.50", image_attributes() + fragments)[132:])
    implicit_body = (implicit(0x0008, 0x0060, b"OPT") + implicit(0x0028, 0x0010, us(2)) + implicit(0x0028, 0x0011, us(2))
                     + implicit(0x0028, 0x0100, us(8)) + implicit(0x7FE0, 0x0010, bytes(4)))
    write("dicom_walk", "implicit_le", dicom("1.2.840.10008.1.2", implicit_body)[132:])
    big = image_attributes(True) + element(0x7FE0, 0x0010, b"OW", bytes(8), True)
    write("dicom_walk", "explicit_be", dicom("1.2.840.10008.1.2.2", big)[132:])

    write("control_protocol", "view", b"\x00" + json.dumps(
        {"v": 1, "type": "view", "seq": 7, "set": {"slice_delta": 1, "zoom": "fit", "red_free": True}}).encode())
    write("control_protocol", "pointer", b"\x00" + json.dumps(
        {"v": 1, "type": "pointer", "seq": 8, "action": "measure", "x": 10.5, "y": 3, "dx": 4, "dy": -2}).encode())
    write("control_protocol", "open_case", b"\x00" + json.dumps(
        {"v": 1, "type": "open_case", "seq": 9, "ticket": "rt1.e30.AAAA"}).encode())
    write("control_protocol", "chunk", b"\x01RRLF" + struct.pack(">QI", 3, 1) + b"data")
    write("control_protocol", "signature", b"\x02v1 " + b"ab" * 32 + b" 1800000000 " + b"A" * 86)
    write("control_protocol", "signed_time", b"\x02" + struct.pack("<q", 1_800_000_010) + b"{}")
    write("control_protocol", "ticket", b"\x03rt1.eyJpZCI6InQxIn0." + b"A" * 86)
    write("control_protocol", "end_sessions", b"\x04" + json.dumps(
        {"filter": {"user": "u1", "study": "s1"}, "reason": "revoked"}).encode())
    write("control_protocol", "heartbeat", b"\x05" + json.dumps(
        {"worker": "w1", "sessions": []}).encode())


if __name__ == "__main__":
    main()
