#include "shapes.h"

double polygon_perimeter(polygon p) { return p.sides * p.side; }
