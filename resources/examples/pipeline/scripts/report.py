"""Gather station summaries into a Markdown table."""
import json
import sys
from pathlib import Path

dst, sources = sys.argv[1], sorted(sys.argv[2:])
stats = [json.loads(Path(s).read_text()) for s in sources]
lines = ["# Weather report", "",
         "| station | days | mean °C | min °C | max °C | rain mm | windiest day |",
         "|---|---:|---:|---:|---:|---:|---|"]
for s in sorted(stats, key=lambda s: s["station"]):
    lines.append(f"| {s['station']} | {s['days']} | {s['temp_mean']} | {s['temp_min']} | "
                 f"{s['temp_max']} | {s['rain_total']} | {s['windiest_day']} |")
Path(dst).write_text("\n".join(lines) + "\n")
print(f"report of {len(stats)} stations written to {dst}")
