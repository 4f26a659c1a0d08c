"""Keep the rows whose every value parses; write wind in m/s as well."""
import csv
import sys

src, dst = sys.argv[1], sys.argv[2]
kept = dropped = 0
with open(src, newline="") as f, open(dst, "w", newline="") as out:
    reader = csv.DictReader(f)
    writer = csv.writer(out)
    writer.writerow(["date", "temp_c", "rain_mm", "wind_ms"])
    for row in reader:
        try:
            temp, rain, wind = float(row["temp_c"]), float(row["rain_mm"]), float(row["wind_kmh"])
        except (TypeError, ValueError):
            dropped += 1
            continue
        writer.writerow([row["date"], temp, rain, round(wind / 3.6, 2)])
        kept += 1
print(f"{src}: kept {kept} rows, dropped {dropped}")
