#include "shapes.h"
#include "report.h"

int main(void)
{
    rect r = {3, 4};
    circle c = {1};
    polygon hex = {6, 2};

    report("rect", rect_area(r), rect_perimeter(r));
    report("circle", circle_area(c), circle_perimeter(c));
    report("hexagon", 0, polygon_perimeter(hex));
    return 0;
}
