#ifndef SHAPES_H
#define SHAPES_H

typedef struct { double w, h; } rect;
typedef struct { double r; } circle;
typedef struct { int sides; double side; } polygon;

double rect_area(rect r);
double rect_perimeter(rect r);
double circle_area(circle c);
double circle_perimeter(circle c);
double polygon_perimeter(polygon p);

#endif
