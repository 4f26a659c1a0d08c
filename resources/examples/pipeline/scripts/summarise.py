"""Mean, min and max temperature, total rain and windiest day of one station."""
import argparse
import csv
import json
import statistics
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--decimals", type=int, default=2)
a = p.parse_args()
with open(a.src, newline="") as f:
    rows = list(csv.DictReader(f))
temps = [float(r["temp_c"]) for r in rows]
windiest = max(rows, key=lambda r: float(r["wind_ms"]))
summary = {
    "station": Path(a.src).stem,
    "days": len(rows),
    "temp_mean": round(statistics.fmean(temps), a.decimals),
    "temp_min": min(temps),
    "temp_max": max(temps),
    "rain_total": round(sum(float(r["rain_mm"]) for r in rows), a.decimals),
    "windiest_day": windiest["date"],
}
Path(a.dst).write_text(json.dumps(summary, indent=2) + "\n")
print(f"{summary['station']}: {summary['days']} days, mean {summary['temp_mean']} °C")
