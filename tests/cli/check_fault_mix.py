#!/usr/bin/python3
"""Checks a run's guest page-fault error-code mix against the one measured for a real kernel
build's cc1 (../shared/research/workloads.md section 3.2: 0x6 75 %, 0x4 11 %, 0x14 7 %, 0x7 7 %),
within a tolerance in percentage points. Usage: check_fault_mix.py STATS_CSV [TOLERANCE]"""
import csv
import sys

MEASURED = {"ec_0x6": 0.75, "ec_0x4": 0.11, "ec_0x14": 0.07, "ec_0x7": 0.07}


def main():
    path = sys.argv[1]
    tolerance = float(sys.argv[2]) if len(sys.argv) > 2 else 0.03
    with open(path, newline="") as f:
        values = {row["name"]: float(row["value"]) for row in csv.DictReader(f)}
    codes = {name.rsplit(".", 1)[1]: v for name, v in values.items()
             if name.startswith("guest.fault_error_codes.")}
    total = sum(codes.values())
    if total == 0:
        sys.exit(f"{path}: no guest page faults")
    failed = False
    for code, expected in MEASURED.items():
        share = codes.get(code, 0.0) / total
        ok = abs(share - expected) <= tolerance
        failed |= not ok
        print(f"{code}: {share:.3f} (measured {expected:.2f}) {'ok' if ok else 'OUT OF RANGE'}")
    print(f"{int(total)} faults")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
