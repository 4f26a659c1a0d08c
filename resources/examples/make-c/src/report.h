#ifndef REPORT_H
#define REPORT_H

void report(const char *name, double area, double perimeter);

#endif
