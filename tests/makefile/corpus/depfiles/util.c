#include "util.h"
int util(void) { return VALUE; }
