#include "shapes.h"

double rect_area(rect r) { return r.w * r.h; }

double rect_perimeter(rect r) { return 2 * (r.w + r.h); }
