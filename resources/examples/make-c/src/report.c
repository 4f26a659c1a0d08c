#include <stdio.h>

#include "report.h"

void report(const char *name, double area, double perimeter)
{
    if (area > 0)
        printf("%-8s area %8.2f  perimeter %8.2f\n", name, area, perimeter);
    else
        printf("%-8s perimeter %8.2f\n", name, perimeter);
}
