#include "shapes.h"

#define PI 3.14159265358979

double circle_area(circle c) { return PI * c.r * c.r; }

double circle_perimeter(circle c) { return 2 * PI * c.r; }
